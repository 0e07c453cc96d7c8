"""eddy against the official Meilisearch Python client, used exactly as its users do."""

import uuid

import pytest
from meilisearch.errors import MeilisearchApiError


def done(client, task_info, status="succeeded"):
    """eddy finishes tasks before acknowledging them: the first look must show them done."""
    task = client.get_task(task_info.task_uid)
    assert task.status == status, task
    return task


def api_error(fn, *args, **kwargs):
    with pytest.raises(MeilisearchApiError) as e:
        fn(*args, **kwargs)
    return e.value


def test_health_version_auth(client, server):
    import meilisearch
    import requests
    assert client.is_healthy()
    assert client.health() == {"status": "available"}
    assert "pkgVersion" in client.get_version()
    err = api_error(meilisearch.Client(server, "wrong-key").get_indexes)
    assert err.code == "invalid_api_key"
    # The client always sends a header (`Bearer None` without a key): check the bare request.
    r = requests.get(server + "/indexes", timeout=10)
    assert r.status_code == 401 and r.json()["code"] == "missing_authorization_header"


def test_index_lifecycle(client, index_uid):
    info = client.create_index(index_uid, {"primaryKey": "id"})
    assert info.status in ("succeeded", "enqueued")
    done(client, info)
    client.wait_for_task(info.task_uid)
    index = client.get_index(index_uid)
    assert index.uid == index_uid and index.primary_key == "id"
    assert index.created_at is not None
    uids = [i.uid for i in client.get_indexes({"limit": 1000})["results"]]
    assert index_uid in uids
    raw = client.get_raw_indexes({"limit": 1, "offset": 0})
    assert raw["limit"] == 1 and len(raw["results"]) == 1
    failed = done(client, client.create_index(index_uid), "failed")
    assert failed.error["code"] == "index_already_exists"
    done(client, client.index(index_uid).update(primary_key="other"))
    assert client.get_index(index_uid).primary_key == "other"
    done(client, client.delete_index(index_uid))
    assert api_error(client.get_index, index_uid).code == "index_not_found"
    assert api_error(client.get_index, "bad uid").code == "invalid_index_uid"


def test_ingest_json_ndjson_csv(client, index_uid, movies, data_dir):
    index = client.index(index_uid + "_json")
    task = done(client, index.add_documents(movies))
    assert task.type == "documentAdditionOrUpdate"
    assert task.details["receivedDocuments"] == 31
    assert index.get_stats().number_of_documents == 31
    assert index.get_primary_key() == "id"

    nd = client.index(index_uid + "_nd")
    done(client, nd.add_documents_ndjson((data_dir / "songs.ndjson").read_bytes(), primary_key="id"))
    assert nd.get_stats().number_of_documents == 225

    csv = client.index(index_uid + "_csv")
    done(client, csv.add_documents_csv((data_dir / "songs.csv").read_bytes(), primary_key="id"))
    stats = csv.get_stats()
    assert stats.number_of_documents == 499
    assert stats.field_distribution.id == 499

    typed = client.index(index_uid + "_typed")
    done(client, typed.add_documents_csv(b"id:number;name;score:number\n1;a;1.5\n2;b;3\n", csv_delimiter=";"))
    doc = typed.get_document(1)
    assert doc.score == 1.5 and doc.name == "a" and doc.id == 1


def test_replace_versus_update(client, index_uid):
    index = client.index(index_uid)
    done(client, index.add_documents([{"id": 1, "title": "Carol", "genre": "Romance"}]))
    done(client, index.update_documents([{"id": 1, "year": 2015}]))
    doc = index.get_document(1)
    assert (doc.title, doc.genre, doc.year) == ("Carol", "Romance", 2015)
    done(client, index.add_documents([{"id": 1, "title": "Carol II"}]))
    doc = dict(index.get_document(1))
    assert doc == {"id": 1, "title": "Carol II"}
    done(client, index.update_documents_ndjson(b'{"id": 2, "title": "New"}\n'))
    assert index.get_stats().number_of_documents == 2


def test_get_fetch_delete_documents(client, index_uid, movies):
    index = client.index(index_uid)
    done(client, index.add_documents(movies, primary_key="id"))
    doc = index.get_document("287947", {"fields": ["title"]})
    assert dict(doc) == {"title": "Shazam!"}
    page = index.get_documents({"limit": 5, "offset": 3, "fields": ["id", "title"]})
    assert page.total == 31 and page.limit == 5 and page.offset == 3 and len(page.results) == 5
    assert set(dict(page.results[0]).keys()) == {"id", "title"}
    everything = index.get_documents({"limit": 100})
    assert len(everything.results) == 31
    ids = [d.id for d in everything.results]

    done(client, index.delete_document(ids[0]))
    assert api_error(index.get_document, ids[0]).code == "document_not_found"
    task = done(client, index.delete_documents(ids[1:4]))
    assert task.details["deletedDocuments"] == 3
    assert index.get_stats().number_of_documents == 27
    done(client, index.delete_all_documents())
    assert index.get_documents().total == 0
    assert api_error(client.index("missing_" + index_uid).get_documents).code == "index_not_found"


def test_search_and_both_pagination_modes(client, index_uid):
    index = client.index(index_uid)
    docs = [{"id": i, "title": f"alpha item{i}", "n": i} for i in range(40)]
    done(client, index.add_documents(docs))
    r = index.search("alpha", {"limit": 7, "offset": 5, "attributesToRetrieve": ["title"], "showRankingScore": True})
    assert r["limit"] == 7 and r["offset"] == 5 and r["estimatedTotalHits"] == 40
    assert len(r["hits"]) == 7
    assert set(r["hits"][0].keys()) == {"title", "_rankingScore"}
    assert "processingTimeMs" in r and r["query"] == "alpha"
    r = index.search("alpha", {"page": 2, "hitsPerPage": 15})
    assert (r["page"], r["hitsPerPage"], r["totalPages"], r["totalHits"]) == (2, 15, 3, 40)
    assert len(r["hits"]) == 15
    r = index.search("item17")
    assert [h["id"] for h in r["hits"]][:1] == [17]
    r = index.search("", {"matchingStrategy": "all", "limit": 0})
    assert r["hits"] == [] and r["estimatedTotalHits"] == 40
    assert api_error(index.search, "x", {"limit": -1}).code == "invalid_search_limit"
    assert api_error(index.search, "x", {"matchingStrategy": "some"}).code == "invalid_search_matching_strategy"
    err = api_error(index.search, "x", {"unknownParam": 1})
    assert err.code == "bad_request" and "unknownParam" in err.message
    assert api_error(client.index("missing_" + index_uid).search, "x").code == "index_not_found"


def test_task_listing_filters_cancel_delete(client, index_uid):
    index = client.index(index_uid)
    a = index.add_documents([{"id": 1}])
    b = index.add_documents([{"id": "bad id!"}])
    c = index.add_documents([{"id": 2}])
    r = client.get_tasks({"indexUids": [index_uid]})
    assert [t.uid for t in r.results] == [c.task_uid, b.task_uid, a.task_uid]
    assert r.total == 3
    r = client.get_tasks({"indexUids": [index_uid], "statuses": ["failed"]})
    assert [t.uid for t in r.results] == [b.task_uid]
    assert r.results[0].error["code"] == "invalid_document_id"
    r = client.get_tasks({"indexUids": [index_uid], "limit": 2})
    assert len(r.results) == 2 and r.next_ == a.task_uid
    r = client.get_tasks({"indexUids": [index_uid], "limit": 2, "from": r.next_})
    assert [t.uid for t in r.results] == [a.task_uid]
    r = client.get_tasks({"indexUids": [index_uid], "reverse": "true"})
    assert [t.uid for t in r.results] == [a.task_uid, b.task_uid, c.task_uid]
    # The raw timestamp (nanoseconds): Python's datetime would truncate it to microseconds.
    after = client.http.get(f"tasks/{a.task_uid}")["enqueuedAt"]
    r = client.get_tasks({"types": ["documentAdditionOrUpdate"], "indexUids": [index_uid], "afterEnqueuedAt": after})
    assert {t.uid for t in r.results} == {b.task_uid, c.task_uid}

    cancel = client.cancel_tasks({"statuses": ["enqueued", "processing"]})
    t = done(client, cancel)
    assert t.type == "taskCancelation" and t.details["originalFilter"] == "?statuses=enqueued%2Cprocessing"
    delete = client.delete_tasks({"uids": [str(b.task_uid)]})
    t = done(client, delete)
    assert t.type == "taskDeletion" and t.details["deletedTasks"] == 1
    assert api_error(client.get_task, b.task_uid).code == "task_not_found"
    assert api_error(client.delete_tasks, {}).code == "missing_task_filters"
    assert api_error(client.get_tasks, {"statuses": ["nope"]}).code == "invalid_task_statuses"

    batch = client.get_batch(c.task_uid)
    assert batch.uid == c.task_uid and batch.stats["totalNbTasks"] == 1
    batches = client.get_batches({"limit": 2})
    assert len(batches.results) == 2


def test_errors_match_meilisearch(client, index_uid):
    index = client.index(index_uid)
    err = api_error(client.http.post, f"indexes/{index_uid}/documents", "[{", "application/json")
    assert err.code == "malformed_payload"
    err = api_error(client.http.post, f"indexes/{index_uid}/documents", '{"id":1}', "text/plain")
    assert err.code == "invalid_content_type"
    err = api_error(client.http.post, f"indexes/{index_uid}/documents", "", "application/json")
    assert err.code == "missing_payload"
    assert api_error(client.get_index, index_uid).code == "index_not_found"
    assert api_error(client.get_task, 10**12).code == "task_not_found"
    failed = done(client, index.add_documents([{"title": "no id field"}]), "failed")
    assert failed.error["code"] == "index_primary_key_no_candidate_found"
    assert failed.error["type"] == "invalid_request"
    assert failed.error["link"].endswith("#index_primary_key_no_candidate_found")


def test_webhooks_and_experimental_features(client):
    hook = client.create_webhook({"url": "http://127.0.0.1:9/hook", "headers": {"a": "b"}})
    assert hook.url == "http://127.0.0.1:9/hook" and hook.isEditable
    assert any(h.uuid == hook.uuid for h in client.get_webhooks().results)
    updated = client.update_webhook(hook.uuid, {"url": "http://127.0.0.1:9/other"})
    assert updated.url.endswith("/other")
    client.delete_webhook(hook.uuid)
    assert api_error(client.get_webhook, hook.uuid).code == "webhook_not_found"
    features = client.update_experimental_features({"metrics": True})
    assert features["metrics"] is True
    assert client.get_experimental_features()["metrics"] is True


def test_real_time_search_after_each_write(client, index_uid):
    """Right after add_documents returns, without waiting for the task, search finds it."""
    index = client.index(index_uid)
    done(client, client.create_index(index_uid, {"primaryKey": "id"}))
    # Words far apart (random letters), so that typo tolerance never confuses two of them.
    words = ["".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:14]) for _ in range(1000)]
    for i, word in enumerate(words):
        index.add_documents([{"id": i, "title": f"{word} document"}])
        hits = index.search(word, {"matchingStrategy": "all", "limit": 5})["hits"]
        assert [h["id"] for h in hits] == [i], (i, hits)
        if i % 100 == 99:
            # Replacing must be visible at once too, never the old version.
            index.add_documents([{"id": i, "title": "replaced"}])
            assert index.search(word, {"matchingStrategy": "all"})["hits"] == []
            assert index.get_document(i).title == "replaced"
    assert index.get_stats().number_of_documents == 1000


def test_api_keys(client, server, index_uid):
    import datetime
    import hashlib
    import hmac
    import meilisearch
    from conftest import MASTER_KEY

    keys = client.get_keys({"limit": 100})
    names = [k.name for k in keys.results]
    assert "Default Search API Key" in names and "Default Admin API Key" in names
    key = client.create_key({
        "name": "compat", "description": "made by the compat suite",
        "actions": ["documents.*", "indexes.*", "tasks.get", "search"],
        "indexes": [index_uid + "*"],
        "expiresAt": (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)).isoformat(),
    })
    # A key's value is the hex HMAC-SHA256 of its uid keyed with the master key.
    assert key.key == hmac.new(MASTER_KEY.encode(), key.uid.encode(), hashlib.sha256).hexdigest()
    assert client.get_key(key.uid).key == key.key
    assert client.get_key(key.key).uid == key.uid
    updated = client.update_key(key.uid, {"name": "renamed"})
    assert updated.name == "renamed" and updated.actions == key.actions

    scoped = meilisearch.Client(server, key.key)
    done(scoped, scoped.index(index_uid).add_documents([{"id": 1, "title": "scoped"}]))
    assert scoped.index(index_uid).search("scoped")["hits"][0]["id"] == 1
    # Outside its index patterns and actions: refused.
    assert api_error(scoped.index("elsewhere_" + index_uid).search, "x").code == "invalid_api_key"
    assert api_error(scoped.get_keys).code == "invalid_api_key"
    assert api_error(scoped.index(index_uid).get_settings).code == "invalid_api_key"
    # Listings show only what the key may reach.
    assert all(i.uid.startswith(index_uid) for i in scoped.get_indexes({"limit": 1000})["results"])
    assert all(t.index_uid.startswith(index_uid) for t in scoped.get_tasks({"limit": 1000}).results)

    client.delete_key(key.uid)
    assert api_error(client.get_key, key.uid).code == "api_key_not_found"
    assert api_error(scoped.index(index_uid).search, "scoped").code == "invalid_api_key"


def test_tenant_tokens(client, server, index_uid):
    import datetime
    import meilisearch

    index = client.index(index_uid)
    done(client, index.add_documents([{"id": 1, "title": "tenant doc", "tenant": "a"}]))
    parent = client.create_key({"actions": ["search"], "indexes": ["*"], "expiresAt": None})
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    token = client.generate_tenant_token(parent.uid, [index_uid], expires_at=later, api_key=parent.key)
    tenant = meilisearch.Client(server, token)
    assert tenant.index(index_uid).search("tenant")["hits"][0]["id"] == 1
    # Only search, only the indexes of the rules.
    assert api_error(tenant.index("other_" + index_uid).search, "x").code == "invalid_api_key"
    assert api_error(tenant.index(index_uid).get_documents).code == "invalid_api_key"
    # Signed with the master key (not an API key) or tampered: refused.
    forged = client.generate_tenant_token(parent.uid, ["*"])
    assert api_error(meilisearch.Client(server, forged).index(index_uid).search, "x").code == "invalid_api_key"
    head, _, sig = token.split(".")
    wide = client.generate_tenant_token(parent.uid, ["*"], api_key=parent.key).split(".")[1]
    tampered = ".".join([head, wide, sig])
    assert api_error(meilisearch.Client(server, tampered).index(index_uid).search, "x").code == "invalid_api_key"
    # A forced filter: refused while the engine cannot filter, never answered unfiltered.
    filtered = client.generate_tenant_token(
        parent.uid, {index_uid: {"filter": "tenant = a"}}, api_key=parent.key)
    try:
        hits = meilisearch.Client(server, filtered).index(index_uid).search("tenant", {"filter": "tenant = b"})["hits"]
        assert hits == []
    except MeilisearchApiError as e:
        assert e.code == "invalid_search_filter"
    client.delete_key(parent.uid)
    assert api_error(tenant.index(index_uid).search, "tenant").code == "invalid_api_key"
