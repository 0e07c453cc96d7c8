"""Search features through the official Meilisearch Python client: filters, facets, facet
search, sort, distinct, geo, highlighting and cropping, settings round-trips, multi-search."""

import json
from collections import Counter

from test_compat import api_error, done


def movies_index(client, index_uid, movies):
    index = client.index(index_uid)
    done(client, index.add_documents(movies, primary_key="id"))
    done(client, index.update_filterable_attributes(["genre", "release_date"]))
    done(client, index.update_sortable_attributes(["release_date", "title"]))
    return index


def test_filters_facets_sort_distinct(client, index_uid, movies):
    index = movies_index(client, index_uid, movies)
    genres = Counter(m["genre"] for m in movies if "genre" in m)
    r = index.search("", {"filter": "genre = action", "limit": 100})
    assert r["estimatedTotalHits"] == genres["action"]
    assert all(h["genre"] == "action" for h in r["hits"])
    r = index.search("", {"filter": [["genre = action", "genre = drama"]], "limit": 0})
    assert r["estimatedTotalHits"] == genres["action"] + genres["drama"]
    err = api_error(index.search, "", {"filter": "title = x"})
    assert err.code == "invalid_search_filter"
    assert err.message.startswith("Attribute `title` is not filterable.")
    assert api_error(index.search, "", {"filter": "genre ="}).code == "invalid_search_filter"

    r = index.search("", {"facets": ["genre", "release_date"], "limit": 0})
    assert r["facetDistribution"]["genre"] == dict(genres)
    dates = [m["release_date"] for m in movies]
    assert r["facetStats"]["release_date"] == {"min": min(dates), "max": max(dates)}

    r = index.search("", {"sort": ["release_date:desc"], "limit": 100})
    got = [h["release_date"] for h in r["hits"]]
    assert got == sorted(dates, reverse=True)
    assert api_error(index.search, "", {"sort": ["overview:asc"]}).code == "invalid_search_sort"

    r = index.search("", {"distinct": "genre", "limit": 100})
    seen = [h.get("genre") for h in r["hits"] if "genre" in h]
    assert len(seen) == len(set(seen)) == len(genres)

    r = index.facet_search("genre", "act")
    assert r["facetHits"] == [{"value": "action", "count": genres["action"]}]

    page = index.get_documents({"filter": "genre = action", "limit": 100})
    assert page.total == genres["action"]
    task = done(client, index.delete_documents(filter="genre = action"))
    assert task.details["deletedDocuments"] == genres["action"]
    assert index.get_stats().number_of_documents == len(movies) - genres["action"]


def test_songs_filters_facets_facet_search_sort_distinct_highlight(client, index_uid, data_dir):
    songs = [json.loads(line) for line in (data_dir / "songs.ndjson").read_text().splitlines() if line]
    index = client.index(index_uid)
    done(client, index.add_documents_ndjson((data_dir / "songs.ndjson").read_bytes(), primary_key="id"))
    done(client, index.update_settings({
        "filterableAttributes": ["genre", "country", "released-timestamp", "duration-float", "artist"],
        "sortableAttributes": ["released-timestamp", "title"],
    }))
    assert sorted(index.get_filterable_attributes()) == ["artist", "country", "duration-float", "genre", "released-timestamp"]

    # Filters: equality, numeric range, IN, NOT, AND / OR.
    lo, hi = 1_300_000_000, 1_500_000_000
    r = index.search("", {"filter": f"released-timestamp {lo} TO {hi} AND NOT country = US", "limit": 1000})
    # (Songs lacking an attribute fail the range; `NOT` keeps those lacking `country`.)
    want = {s["id"] for s in songs if lo <= s.get("released-timestamp", -1) <= hi and s.get("country") != "US"}
    assert {h["id"] for h in r["hits"]} == want and r["estimatedTotalHits"] == len(want)
    genres = Counter(s["genre"] for s in songs if "genre" in s)
    top2 = [g for g, _ in genres.most_common(2)]
    quoted = ", ".join(json.dumps(g) for g in top2)
    r = index.search("", {"filter": f"genre IN [{quoted}]", "limit": 0})
    assert r["estimatedTotalHits"] == sum(genres[g] for g in top2)

    # Facets: distribution and numeric stats.
    r = index.search("", {"facets": ["genre", "duration-float"], "limit": 0})
    assert r["facetDistribution"]["genre"] == dict(genres)
    durations = [s["duration-float"] for s in songs if "duration-float" in s]
    assert r["facetStats"]["duration-float"] == {"min": min(durations), "max": max(durations)}

    # Facet search: a prefix of a genre, case-insensitive.
    name = top2[0]
    r = index.facet_search("genre", name[:3].lower())
    assert {"value": name, "count": genres[name]} in r["facetHits"]

    # Sort: newest first, ties broken stably.
    r = index.search("", {"sort": ["released-timestamp:desc"], "limit": 50})
    got = [h["released-timestamp"] for h in r["hits"]]
    assert got == sorted((s["released-timestamp"] for s in songs if "released-timestamp" in s), reverse=True)[:50]

    # Distinct: one song per artist, and every song without one.
    r = index.search("", {"distinct": "artist", "limit": 1000})
    artists = [h["artist"] for h in r["hits"] if "artist" in h]
    assert len(artists) == len(set(artists)) == len({s["artist"] for s in songs if "artist" in s})
    assert len(r["hits"]) - len(artists) == sum(1 for s in songs if "artist" not in s)

    # Highlighting and cropping.
    r = index.search("beethoven", {"attributesToHighlight": ["title"], "attributesToCrop": ["album"], "cropLength": 2})
    hit = next(h for h in r["hits"] if h["id"] == "412559401")
    assert hit["_formatted"]["title"] == "<em>BEETHOVEN</em>"
    assert hit["_formatted"]["album"] == "Trousers Are…"


def test_geo_radius_and_sort(client, index_uid, data_dir):
    index = client.index(index_uid)
    cities = json.loads((data_dir / "world-cities.json").read_text())
    done(client, index.add_documents(cities, primary_key="geonameid"))
    settings = json.loads((data_dir / "world-cities.settings.json").read_text())
    done(client, index.update_settings(settings))
    r = index.search("", {
        "filter": "_geoRadius(48.8566, 2.3522, 200000)",
        "sort": ["_geoPoint(48.8566, 2.3522):asc"],
        "limit": 20,
    })
    distances = [h["_geoDistance"] for h in r["hits"]]
    assert distances and distances == sorted(distances) and distances[-1] <= 200000
    assert r["hits"][0]["name"] == "Paris"


def test_highlight_crop_matches_position(client, index_uid, movies):
    index = movies_index(client, index_uid, movies)
    r = index.search("shazam", {
        "attributesToHighlight": ["title"],
        "attributesToCrop": ["overview"],
        "cropLength": 4,
        "showMatchesPosition": True,
    })
    hit = r["hits"][0]
    assert hit["_formatted"]["title"] == "<em>Shazam</em>!"
    assert hit["_formatted"]["overview"].endswith("…")
    assert hit["_matchesPosition"]["title"] == [{"start": 0, "length": 6}]


def test_synonym_matches_are_highlighted(client, index_uid):
    index = client.index(index_uid)
    done(client, index.add_documents([
        {"id": 1, "title": "New York at night"},
        {"id": 2, "title": "NYC subway"},
    ], primary_key="id"))
    done(client, index.update_synonyms({"nyc": ["new york"]}))
    r = index.search("nyc", {"attributesToHighlight": ["title"], "showMatchesPosition": True})
    got = {h["id"]: h for h in r["hits"]}
    assert got[1]["_formatted"]["title"] == "<em>New</em> <em>York</em> at night"
    assert got[1]["_matchesPosition"]["title"] == [{"start": 0, "length": 3}, {"start": 4, "length": 4}]
    assert got[2]["_formatted"]["title"] == "<em>NYC</em> subway"
    # One-way: `new york` does not lead back to `nyc`.
    r = index.search("new york", {"attributesToHighlight": ["title"]})
    assert [h["_formatted"]["title"] for h in r["hits"]] == ["<em>New</em> <em>York</em> at night"]


def test_settings_round_trips_and_resets(client, index_uid):
    index = client.index(index_uid)
    done(client, client.create_index(index_uid))
    defaults = index.get_settings()
    assert defaults["rankingRules"][0] == "words"
    assert defaults["pagination"] == {"maxTotalHits": 1000}
    done(client, index.update_ranking_rules(["sort", "words", "bm25", "year:desc"]))
    assert index.get_ranking_rules() == ["sort", "words", "bm25", "year:desc"]
    done(client, index.update_stop_words(["the"]))
    assert index.get_stop_words() == ["the"]
    done(client, index.update_synonyms({"couch": ["sofa"]}))
    assert index.get_synonyms() == {"couch": ["sofa"]}
    done(client, index.update_typo_tolerance({"minWordSizeForTypos": {"oneTypo": 4}}))
    typo = index.get_typo_tolerance()
    assert typo.min_word_size_for_typos.one_typo == 4 and typo.enabled
    done(client, index.update_pagination_settings({"maxTotalHits": 10}))
    assert index.get_pagination_settings().max_total_hits == 10
    done(client, index.update_faceting_settings({"maxValuesPerFacet": 3}))
    assert index.get_faceting_settings().max_values_per_facet == 3
    done(client, index.update_distinct_attribute("sku"))
    assert index.get_distinct_attribute() == "sku"
    done(client, index.update_searchable_attributes(["title"]))
    assert index.get_searchable_attributes() == ["title"]
    err = api_error(index.update_ranking_rules, ["nope"])
    assert err.code == "invalid_settings_ranking_rules"
    done(client, index.reset_ranking_rules())
    done(client, index.reset_typo_tolerance())
    done(client, index.reset_settings())
    assert index.get_settings() == defaults


def test_tokenization_change_rebuilds_in_the_background(client, index_uid):
    """A settings change that alters indexing is a task that finishes when the rebuilt index
    is swapped in: `wait_for_task` sees it succeed, then search uses the new tokenization."""
    index = client.index(index_uid)
    docs = [{"id": i, "text": f"alpha{i % 10}zzomega"} for i in range(800)]
    done(client, index.add_documents(docs, primary_key="id"))
    assert index.search('"omega"')["estimatedTotalHits"] == 0
    info = index.update_separator_tokens(["zz"])
    # Like every Meilisearch 202: the summarized task of unfinished work is `enqueued`.
    assert info.status == "enqueued"
    task = client.wait_for_task(info.task_uid, timeout_in_ms=120_000)
    assert task.status == "succeeded", task
    assert task.type == "settingsUpdate"
    assert index.get_separator_tokens() == ["zz"]
    assert index.search('"omega"')["estimatedTotalHits"] == 800
    assert index.get_stats().is_indexing is False


def test_a_rebuilding_settings_task_can_be_canceled(client, index_uid):
    index = client.index(index_uid)
    docs = [{"id": i, "text": f"alpha{i % 10}zzomega"} for i in range(30_000)]
    done(client, index.add_documents(docs, primary_key="id"))
    info = index.update_separator_tokens(["zz"])
    cancel = done(client, client.cancel_tasks({"uids": [str(info.task_uid)]}))
    assert cancel.type == "taskCancelation" and cancel.details["matchedTasks"] == 1
    task = client.wait_for_task(info.task_uid, timeout_in_ms=120_000)
    if cancel.details["canceledTasks"] == 1:
        assert task.status == "canceled" and task.canceled_by == cancel.uid
        assert index.get_separator_tokens() == []
        assert index.search('"omega"')["estimatedTotalHits"] == 0
    else:  # the rebuild finished before the cancelation arrived
        assert task.status == "succeeded"
    assert index.get_stats().number_of_documents == 30_000


def test_multi_search_and_federation(client, index_uid, movies):
    movies_index(client, index_uid, movies)
    r = client.multi_search([
        {"indexUid": index_uid, "q": "shazam", "limit": 1},
        {"indexUid": index_uid, "q": "", "filter": "genre = action", "limit": 0},
    ])
    assert r["results"][0]["indexUid"] == index_uid
    assert r["results"][0]["hits"][0]["title"] == "Shazam!"
    r = client.multi_search(
        [{"indexUid": index_uid, "q": "shazam"}, {"indexUid": index_uid, "q": "captain"}],
        {"limit": 5},
    )
    assert {h["_federation"]["queriesPosition"] for h in r["hits"]} == {0, 1}
