//! Word derivations: which indexed terms a query word matches (itself, words with typos,
//! words it is a prefix of), and with how many typos.
//!
//! A Levenshtein automaton (transpositions cost one) is run over each layer's term
//! dictionary: Tantivy's FST intersects it natively; the memtable's sorted dictionary is
//! walked with the automaton, skipping every key range the automaton has already rejected.
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

use super::query::WordTerm;

/// Most derivations kept per query word.
pub const MAX_DERIVATIONS: usize = 64;

fn builder(distance: u8) -> &'static LevenshteinAutomatonBuilder {
    static BUILDERS: [OnceLock<LevenshteinAutomatonBuilder>; 3] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let d = distance.min(2);
    BUILDERS[usize::from(d)].get_or_init(|| LevenshteinAutomatonBuilder::new(d, true))
}

/// The automaton of one query word.
pub struct WordDfa {
    dfa: DFA,
    first: Option<char>,
    max_typos: u8,
}

impl WordDfa {
    /// Builds the automaton of a query word.
    pub fn new(word: &WordTerm) -> WordDfa {
        let b = builder(word.max_typos);
        let dfa = if word.prefix {
            b.build_prefix_dfa(&word.text)
        } else {
            b.build_dfa(&word.text)
        };
        WordDfa {
            dfa,
            first: word.text.chars().next(),
            max_typos: word.max_typos.min(2),
        }
    }

    /// Typos needed for `term` to match, or `None` if it does not.
    pub fn typos(&self, term: &[u8]) -> Option<u8> {
        let mut state = self.dfa.initial_state();
        for &b in term {
            state = self.dfa.transition(state, b);
            if state == SINK_STATE {
                return None;
            }
        }
        self.finish(state, term)
    }

    fn finish(&self, state: u32, term: &[u8]) -> Option<u8> {
        match self.dfa.distance(state) {
            Distance::Exact(d) => {
                let first_differs = std::str::from_utf8(term)
                    .ok()
                    .and_then(|t| t.chars().next())
                    != self.first;
                let typos = if d > 0 && first_differs { d + 1 } else { d };
                (typos <= self.max_typos).then_some(typos)
            }
            Distance::AtLeast(_) => None,
        }
    }

    /// Runs the automaton over a sorted dictionary given by `next_at_or_after` and calls
    /// `found` with each matching term and its typos.
    pub fn walk_sorted<'a>(
        &self,
        mut next_at_or_after: impl FnMut(&[u8]) -> Option<&'a [u8]>,
        mut found: impl FnMut(&'a [u8], u8),
    ) {
        let mut from: Vec<u8> = Vec::new();
        while let Some(term) = next_at_or_after(&from) {
            let mut state = self.dfa.initial_state();
            let mut dead_at = None;
            for (i, &b) in term.iter().enumerate() {
                state = self.dfa.transition(state, b);
                if state == SINK_STATE {
                    dead_at = Some(i);
                    break;
                }
            }
            match dead_at {
                None => {
                    if let Some(t) = self.finish(state, term) {
                        found(term, t);
                    }
                    // Smallest key greater than `term`.
                    from.clear();
                    from.extend_from_slice(term);
                    from.push(0);
                }
                Some(i) => {
                    // No key starting with term[..=i] can match: jump past them all.
                    from.clear();
                    from.extend_from_slice(&term[..=i]);
                    loop {
                        match from.pop() {
                            None => return,
                            Some(0xFF) => continue,
                            Some(b) => {
                                from.push(b + 1);
                                break;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Lets Tantivy's term dictionary stream the terms a word matches.
pub struct FstAutomaton<'a>(pub &'a WordDfa);

impl tantivy_fst::Automaton for FstAutomaton<'_> {
    type State = u32;

    fn start(&self) -> u32 {
        self.0.dfa.initial_state()
    }

    fn is_match(&self, state: &u32) -> bool {
        matches!(self.0.dfa.distance(*state), Distance::Exact(_))
    }

    fn can_match(&self, state: &u32) -> bool {
        *state != SINK_STATE
    }

    fn accept(&self, state: &u32, byte: u8) -> u32 {
        self.0.dfa.transition(*state, byte)
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

    #[test]
    fn sorted_walk_equals_brute_force() {
        let dict: Vec<&[u8]> = vec![
            b"apple", b"appel", b"apply", b"banana", b"help", b"hello", b"hellos", b"helo",
            b"jello", b"world", b"zzz",
        ];
        let mut sorted = dict.clone();
        sorted.sort();
        for (text, prefix, typos) in [
            ("hello", false, 1u8),
            ("hel", true, 0),
            ("aple", true, 1),
            ("wrld", false, 1),
            ("zz", true, 0),
        ] {
            let w = word(text, prefix, typos);
            let brute: Vec<(&[u8], u8)> = sorted
                .iter()
                .filter_map(|t| w.typos(t).map(|d| (*t, d)))
                .collect();
            let mut walked = Vec::new();
            w.walk_sorted(
                |from| sorted.iter().copied().find(|t| *t >= from),
                |t, d| walked.push((t, d)),
            );
            assert_eq!(walked, brute, "{text}");
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
