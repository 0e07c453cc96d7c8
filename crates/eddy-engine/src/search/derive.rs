//! Word derivations: which indexed terms a query word matches (itself, words with typos,
//! words it is a prefix of), and with how many typos.
//!
//! A Levenshtein automaton (transpositions cost one) is run over each layer's term
//! dictionary. FSTs (the merged dictionary of a searcher's segments, a memtable's sealed
//! dictionary) are walked node by node, asking the automaton before decoding a node; a
//! segment's own dictionary (when no merged one exists) is intersected by Tantivy; the
//! memtable's recent terms are walked in order, skipping every key range the automaton has
//! already rejected.
//!
//! As in Meilisearch, a typo on the first letter costs two: with one typo allowed, the first
//! letter must match.
//!
//! The derivations of a word are the union over all layers, so they do not depend on which
//! layer holds a document. When a word has more than [`MAX_DERIVATIONS`] derivations (short
//! prefixes), the kept ones are the closest: fewest typos, then shortest, then alphabetical,
//! counting only terms that some visible document contains.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use levenshtein_automata::{DFA, Distance, LevenshteinAutomatonBuilder, SINK_STATE};
use tantivy_fst::raw::{Fst, Node};

use super::query::WordTerm;

/// Most derivations kept per query word.
pub const MAX_DERIVATIONS: usize = 64;

fn builder(distance: u8) -> &'static LevenshteinAutomatonBuilder {
    static BUILDERS: [OnceLock<LevenshteinAutomatonBuilder>; 3] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let d = distance.min(2);
    BUILDERS[usize::from(d)].get_or_init(|| LevenshteinAutomatonBuilder::new(d, true))
}

/// The automata of one query word.
///
/// Terms that start with the word's first letter are matched with up to `max_typos` edits;
/// with two typos allowed, terms that start with another letter are matched with one edit
/// (the first-letter edit counts as the second typo). Splitting by first letter is also what
/// makes derivation cheap: each automaton only walks its own key range.
pub struct WordDfa {
    same: DFA,
    other: Option<DFA>,
    first: Vec<u8>,
    prefix_only: Option<Vec<u8>>,
}

impl WordDfa {
    /// Builds the automata of a query word.
    pub fn new(word: &WordTerm) -> WordDfa {
        let build = |d: u8| {
            let b = builder(d);
            if word.prefix {
                b.build_prefix_dfa(&word.text)
            } else {
                b.build_dfa(&word.text)
            }
        };
        let max = word.max_typos.min(2);
        let first = word
            .text
            .chars()
            .next()
            .map(|c| c.to_string().into_bytes())
            .unwrap_or_default();
        WordDfa {
            same: build(max),
            other: (max == 2).then(|| build(1)),
            first,
            prefix_only: (max == 0 && word.prefix).then(|| word.text.as_bytes().to_vec()),
        }
    }

    /// When the word matches exactly its completions (a prefix without typos), the prefix.
    pub fn plain_prefix(&self) -> Option<&[u8]> {
        self.prefix_only.as_deref()
    }

    /// The key range of terms starting with the word's first letter.
    pub fn same_range(&self) -> (Vec<u8>, Option<Vec<u8>>) {
        (self.first.clone(), successor(&self.first))
    }

    /// Whether terms starting with other letters can match.
    pub fn has_other(&self) -> bool {
        self.other.is_some()
    }

    fn starts_same(&self, term: &[u8]) -> bool {
        !self.first.is_empty() && term.starts_with(&self.first)
    }

    /// Typos needed for `term` to match, or `None` if it does not.
    pub fn typos(&self, term: &[u8]) -> Option<u8> {
        if self.starts_same(term) {
            run(&self.same, term)
        } else {
            run(self.other.as_ref()?, term).map(|d| d + 1)
        }
    }

    /// Runs the matching automaton over a sorted dictionary, restricted to the key ranges
    /// that can match. `range(lo, hi)` yields the dictionary's terms in `[lo, hi)` in order
    /// (`hi = None`: unbounded); `found` gets each match and its typos.
    pub fn walk_sorted<'a, I>(
        &self,
        mut range: impl FnMut(&[u8], Option<&[u8]>) -> I,
        mut found: impl FnMut(&'a [u8], u8),
    ) where
        I: Iterator<Item = &'a [u8]>,
    {
        if let Some(prefix) = &self.prefix_only {
            for term in range(prefix, successor(prefix).as_deref()) {
                found(term, 0);
            }
            return;
        }
        let (lo, hi) = self.same_range();
        walk(&self.same, &lo, hi.as_deref(), &mut range, &mut |t, d| {
            found(t, d)
        });
        if let Some(other) = &self.other {
            walk(other, b"", Some(&lo), &mut range, &mut |t, d| {
                found(t, d + 1)
            });
            if let Some(hi) = &hi {
                walk(other, hi, None, &mut range, &mut |t, d| found(t, d + 1));
            }
        }
    }

    /// Streams matches from a Tantivy term dictionary.
    pub fn walk_fst(
        &self,
        dict: &tantivy::termdict::TermDictionary,
        found: impl FnMut(&[u8], u8),
    ) -> std::io::Result<()> {
        self.walk_automaton(
            |dfa, (lo, hi), f| match dfa {
                Some(dfa) => dict_stream(dict, FstAutomaton(dfa), lo, hi, f),
                None => dict_stream(dict, tantivy_fst::automaton::AlwaysMatch, lo, hi, f),
            },
            found,
        )
    }

    /// Walks an FST (a memtable's sealed dictionary, the merged dictionary of a searcher's
    /// segments) node by node: see [`walk_raw`].
    pub fn walk_fst_raw(&self, fst: &Fst<Vec<u8>>, mut found: impl FnMut(&[u8], u8)) {
        if let Some(prefix) = &self.prefix_only {
            walk_raw(fst, None, prefix, None, &mut found);
            return;
        }
        walk_raw(fst, Some(&self.same), &self.first, None, &mut found);
        if let Some(other) = &self.other {
            walk_raw(fst, Some(other), b"", Some(&self.first), &mut |t, d| {
                found(t, d + 1)
            });
        }
    }

    /// The walk over an automaton-intersecting dictionary: `stream(dfa, lo, hi, f)` calls `f`
    /// with every term of `[lo, hi)` the automaton may accept (every term when `dfa` is
    /// `None`); the final check of each term happens here.
    fn walk_automaton(
        &self,
        mut stream: impl FnMut(Option<&DFA>, Bounds<'_>, &mut dyn FnMut(&[u8])) -> std::io::Result<()>,
        mut found: impl FnMut(&[u8], u8),
    ) -> std::io::Result<()> {
        if let Some(prefix) = &self.prefix_only {
            let hi = successor(prefix);
            return stream(None, (Some(prefix), hi.as_deref()), &mut |t| found(t, 0));
        }
        let (lo, hi) = self.same_range();
        stream(Some(&self.same), (Some(&lo), hi.as_deref()), &mut |t| {
            if let Some(d) = run(&self.same, t) {
                found(t, d);
            }
        })?;
        if let Some(other) = &self.other {
            let mut on_other = |t: &[u8]| {
                if let Some(d) = run(other, t) {
                    found(t, d + 1);
                }
            };
            stream(Some(other), (None, Some(&lo)), &mut on_other)?;
            if let Some(hi) = &hi {
                stream(Some(other), (Some(hi), None), &mut on_other)?;
            }
        }
        Ok(())
    }
}

fn dict_stream<A>(
    dict: &tantivy::termdict::TermDictionary,
    aut: A,
    lo: Option<&[u8]>,
    hi: Option<&[u8]>,
    f: &mut dyn FnMut(&[u8]),
) -> std::io::Result<()>
where
    A: tantivy_fst::Automaton,
    A::State: Clone,
{
    let mut b = dict.search(aut);
    if let Some(lo) = lo {
        b = b.ge(lo);
    }
    if let Some(hi) = hi {
        b = b.lt(hi);
    }
    let mut stream = b.into_stream()?;
    while let Some((term, _)) = stream.next() {
        f(term);
    }
    Ok(())
}

/// A key range `[lo, hi)`; `None` bounds are open.
type Bounds<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// The smallest key greater than every key starting with `prefix`, if any.
pub fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut s = prefix.to_vec();
    while let Some(last) = s.pop() {
        if last < 0xFF {
            s.push(last + 1);
            return Some(s);
        }
    }
    None
}

fn run(dfa: &DFA, term: &[u8]) -> Option<u8> {
    let mut state = dfa.initial_state();
    for &b in term {
        state = dfa.transition(state, b);
        if state == SINK_STATE {
            return None;
        }
    }
    match dfa.distance(state) {
        Distance::Exact(d) => Some(d),
        Distance::AtLeast(_) => None,
    }
}

/// One node of a depth-first walk: the node, its next transition to try, the automaton
/// state on arriving there.
struct Frame<'f> {
    node: Node<'f>,
    next: usize,
    state: u32,
}

/// Calls `found` with every key of `fst` that starts with `start`, does not start with
/// `skip`, and that `dfa` accepts (every such key, with 0 typos, when `dfa` is `None`),
/// with its distance.
///
/// Tantivy's FST stream decodes the target node of every transition before asking the
/// automaton whether it is worth visiting; this walk asks first, so a transition the
/// automaton rejects costs one table lookup. That is most transitions of a typo walk.
fn walk_raw(
    fst: &Fst<Vec<u8>>,
    dfa: Option<&DFA>,
    start: &[u8],
    skip: Option<&[u8]>,
    found: &mut dyn FnMut(&[u8], u8),
) {
    let step = |state: u32, b: u8| -> Option<u32> {
        match dfa {
            Some(dfa) => {
                let next = dfa.transition(state, b);
                (next != SINK_STATE).then_some(next)
            }
            None => Some(state),
        }
    };
    let distance = |state: u32| -> Option<u8> {
        match dfa {
            Some(dfa) => match dfa.distance(state) {
                Distance::Exact(d) => Some(d),
                Distance::AtLeast(_) => None,
            },
            None => Some(0),
        }
    };
    let skipped = |key: &[u8]| skip.is_some_and(|s| !s.is_empty() && key == s);
    let mut key: Vec<u8> = Vec::with_capacity(32);
    let mut node = fst.root();
    let mut state = dfa.map_or(0, DFA::initial_state);
    for &b in start {
        let Some(i) = node.find_input(b) else {
            return;
        };
        let Some(next) = step(state, b) else {
            return;
        };
        state = next;
        key.push(b);
        node = fst.node(node.transition_addr(i));
    }
    if skipped(&key) {
        return;
    }
    if node.is_final()
        && let Some(d) = distance(state)
    {
        found(&key, d);
    }
    let mut stack = vec![Frame {
        node,
        next: 0,
        state,
    }];
    while let Some(top) = stack.last_mut() {
        if top.next == top.node.len() {
            stack.pop();
            key.pop();
            continue;
        }
        let t = top.node.transition(top.next);
        top.next += 1;
        let Some(next) = step(top.state, t.inp) else {
            continue;
        };
        key.push(t.inp);
        if skipped(&key) {
            key.pop();
            continue;
        }
        let child = fst.node(t.addr);
        if child.is_final()
            && let Some(d) = distance(next)
        {
            found(&key, d);
        }
        stack.push(Frame {
            node: child,
            next: 0,
            state: next,
        });
    }
}

/// Walks `[lo, hi)` of a sorted dictionary with an automaton, jumping over every key range
/// the automaton has rejected.
fn walk<'a, I: Iterator<Item = &'a [u8]>>(
    dfa: &DFA,
    lo: &[u8],
    hi: Option<&[u8]>,
    range: &mut impl FnMut(&[u8], Option<&[u8]>) -> I,
    found: &mut impl FnMut(&'a [u8], u8),
) {
    let mut from = lo.to_vec();
    'seek: loop {
        let mut it = range(&from, hi);
        for term in it.by_ref() {
            let mut state = dfa.initial_state();
            let mut dead_at = None;
            for (i, &b) in term.iter().enumerate() {
                state = dfa.transition(state, b);
                if state == SINK_STATE {
                    dead_at = Some(i);
                    break;
                }
            }
            match dead_at {
                None => {
                    if let Distance::Exact(d) = dfa.distance(state) {
                        found(term, d);
                    }
                }
                Some(i) => {
                    // No key starting with term[..=i] can match: jump past all of them.
                    match successor(&term[..=i]) {
                        Some(next) => {
                            from = next;
                            continue 'seek;
                        }
                        None => return,
                    }
                }
            }
        }
        return;
    }
}

/// Lets Tantivy's term dictionary stream the terms an automaton matches.
pub struct FstAutomaton<'a>(pub &'a DFA);

impl tantivy_fst::Automaton for FstAutomaton<'_> {
    type State = u32;

    fn start(&self) -> u32 {
        self.0.initial_state()
    }

    fn is_match(&self, state: &u32) -> bool {
        matches!(self.0.distance(*state), Distance::Exact(_))
    }

    fn can_match(&self, state: &u32) -> bool {
        *state != SINK_STATE
    }

    fn accept(&self, state: &u32, byte: u8) -> u32 {
        self.0.transition(*state, byte)
    }
}

/// A term a query word matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derivation {
    /// The indexed term.
    pub term: String,
    /// Typos between the query word and the term.
    pub typos: u8,
}

/// Keeps at most [`MAX_DERIVATIONS`] derivations out of the union collected over layers.
/// `is_live` tells whether any visible document contains a term; it is only consulted when
/// the cap applies.
pub fn select(
    union: BTreeMap<Vec<u8>, u8>,
    mut is_live: impl FnMut(&str) -> bool,
) -> Vec<Derivation> {
    let mut all: Vec<Derivation> = union
        .into_iter()
        .filter_map(|(term, typos)| {
            String::from_utf8(term)
                .ok()
                .map(|term| Derivation { term, typos })
        })
        .collect();
    if all.len() <= MAX_DERIVATIONS {
        return all;
    }
    all.sort_by(|a, b| (a.typos, a.term.len(), &a.term).cmp(&(b.typos, b.term.len(), &b.term)));
    let mut kept = Vec::with_capacity(MAX_DERIVATIONS);
    for d in all {
        if kept.len() == MAX_DERIVATIONS {
            break;
        }
        if is_live(&d.term) {
            kept.push(d);
        }
    }
    kept
}

/// Adds a derivation to the union, keeping the fewest typos.
pub fn add(union: &mut BTreeMap<Vec<u8>, u8>, term: &[u8], typos: u8) {
    union
        .entry(term.to_vec())
        .and_modify(|t| *t = (*t).min(typos))
        .or_insert(typos);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(text: &str, prefix: bool, max_typos: u8) -> WordDfa {
        WordDfa::new(&WordTerm {
            text: text.into(),
            prefix,
            max_typos,
        })
    }

    #[test]
    fn typo_counts_and_first_letter_rule() {
        let w = word("hello", false, 1);
        assert_eq!(w.typos(b"hello"), Some(0));
        assert_eq!(w.typos(b"helo"), Some(1));
        assert_eq!(w.typos(b"hlelo"), Some(1), "transposition costs one");
        assert_eq!(w.typos(b"jello"), None, "first letter typo costs two");
        assert_eq!(w.typos(b"help"), None);
        let w = word("observatory", false, 2);
        assert_eq!(w.typos(b"obsrvatory"), Some(1));
        assert_eq!(w.typos(b"ybservatory"), Some(2));
        assert_eq!(w.typos(b"obsrvatorx"), Some(2));
    }

    #[test]
    fn prefix_matches_completions() {
        let w = word("obs", true, 0);
        assert_eq!(w.typos(b"observatory"), Some(0));
        assert_eq!(w.typos(b"obs"), Some(0));
        assert_eq!(w.typos(b"ob"), None);
        assert_eq!(w.typos(b"abs"), None);
    }

    /// Asserts that walking the sorted keys finds what checking every key finds; returns
    /// those matches, sorted.
    fn sorted_walk_against_brute_force<'a>(
        w: &WordDfa,
        sorted: &[&'a [u8]],
        text: &str,
    ) -> Vec<(&'a [u8], u8)> {
        let mut brute: Vec<(&[u8], u8)> = sorted
            .iter()
            .filter_map(|t| w.typos(t).map(|d| (*t, d)))
            .collect();
        brute.sort();
        let mut walked = Vec::new();
        w.walk_sorted(
            |lo, hi| {
                let (lo, hi) = (lo.to_vec(), hi.map(<[u8]>::to_vec));
                sorted.iter().copied().filter(move |t| {
                    *t >= lo.as_slice() && hi.as_ref().is_none_or(|h| *t < h.as_slice())
                })
            },
            |t, d| walked.push((t, d)),
        );
        walked.sort();
        assert_eq!(walked, brute, "{text}");
        brute
    }

    #[test]
    fn sorted_walk_equals_brute_force_over_long_dead_runs() {
        // Long runs of keys under one dead prefix, which the walk seeks past, next to keys
        // that match.
        let letters = ["a", "b", "c", "d", "e"];
        let mut dict: Vec<Vec<u8>> = Vec::new();
        for a in letters {
            for b in letters {
                for c in letters {
                    for tail in ["", "x", "yy", "zzz", "ba", "cab"] {
                        dict.push(format!("{a}{b}{c}{tail}").into_bytes());
                    }
                }
            }
        }
        dict.sort();
        dict.dedup();
        for (text, prefix, typos) in [
            ("abc", true, 0u8),
            ("abcde", false, 1),
            ("bcdzz", false, 1),
            ("eeab", true, 1),
            ("cabba", false, 2),
            ("dd", true, 0),
            ("zzzzz", false, 1),
        ] {
            let keys: Vec<&[u8]> = dict.iter().map(Vec::as_slice).collect();
            sorted_walk_against_brute_force(&word(text, prefix, typos), &keys, text);
        }
    }

    #[test]
    fn sorted_walk_equals_brute_force() {
        let dict: Vec<&[u8]> = vec![
            b"apple",
            b"appel",
            b"apply",
            b"banana",
            b"help",
            b"hello",
            b"hellos",
            b"helo",
            b"jello",
            b"world",
            b"zzz",
            "été".as_bytes(),
            "étés".as_bytes(),
            "eté".as_bytes(),
            "fêter".as_bytes(),
        ];
        let mut sorted = dict.clone();
        sorted.sort();
        let map = tantivy_fst::Map::from_iter(sorted.iter().map(|t| (*t, 0u64)))
            .expect("sorted distinct keys");
        for (text, prefix, typos) in [
            ("hello", false, 1u8),
            ("hel", true, 0),
            ("aple", true, 1),
            ("wrld", false, 1),
            ("zz", true, 0),
            ("helloworld", false, 2),
            ("ello", true, 2),
            ("été", true, 0),
            ("étés", false, 1),
            ("fêtes", false, 2),
            ("étaient", true, 2),
        ] {
            let w = word(text, prefix, typos);
            let brute = sorted_walk_against_brute_force(&w, &sorted, text);
            let mut raw: Vec<(Vec<u8>, u8)> = Vec::new();
            w.walk_fst_raw(map.as_fst(), |t, d| raw.push((t.to_vec(), d)));
            raw.sort();
            let brute: Vec<(Vec<u8>, u8)> = brute.iter().map(|(t, d)| (t.to_vec(), *d)).collect();
            assert_eq!(raw, brute, "{text} (FST walk)");
        }
    }

    #[test]
    fn selection_caps_by_closeness_and_liveness() {
        let mut union = BTreeMap::new();
        for i in 0..100 {
            add(&mut union, format!("t{i:03}").as_bytes(), 0);
        }
        add(&mut union, b"t", 0);
        add(&mut union, b"t", 1);
        let kept = select(union, |t| t != "t000");
        assert_eq!(kept.len(), MAX_DERIVATIONS);
        assert_eq!(kept[0].term, "t");
        assert_eq!(kept[0].typos, 0);
        assert!(kept.iter().all(|d| d.term != "t000"));
    }
}
