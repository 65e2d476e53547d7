//! The subscription index: a token trie with `*` and `>` branches, queue groups kept by name.
//!
//! Readers (every publish) take a shared lock; SUB/UNSUB take it exclusively and bump `genid`,
//! which is how per-connection match caches learn that their results went stale.

use parking_lot::RwLock;
use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What the index stores: anything that knows its subject and queue group.
pub trait Entry {
    fn subject(&self) -> &[u8];
    fn queue(&self) -> Option<&[u8]>;
}

/// The subscriptions matching one subject: plain ones, and queue groups (one member of each
/// group gets the message). Immutable once built, so it can be shared and cached.
pub struct SubResult<T> {
    pub psubs: Vec<Arc<T>>,
    pub qsubs: Vec<Vec<Arc<T>>>,
}

impl<T> SubResult<T> {
    pub fn is_empty(&self) -> bool {
        self.psubs.is_empty() && self.qsubs.is_empty()
    }
}

/// A queue group at one node: its name and members.
type QueueGroup<T> = (Box<[u8]>, Vec<Arc<T>>);

struct Node<T> {
    literal: FxHashMap<Box<[u8]>, Node<T>>,
    pwc: Option<Box<Node<T>>>,
    fwc: Option<Box<Node<T>>>,
    psubs: Vec<Arc<T>>,
    qsubs: Vec<QueueGroup<T>>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Node {
            literal: FxHashMap::default(),
            pwc: None,
            fwc: None,
            psubs: Vec::new(),
            qsubs: Vec::new(),
        }
    }
}

impl<T> Node<T> {
    fn child_mut(&mut self, token: &[u8]) -> &mut Node<T> {
        match token {
            b"*" => self.pwc.get_or_insert_with(Box::default),
            b">" => self.fwc.get_or_insert_with(Box::default),
            _ => self.literal.entry(token.into()).or_default(),
        }
    }

    /// Adds this node's subscriptions to `out`, merging queue groups by name.
    fn collect(&self, out: &mut SubResult<T>, names: &mut Vec<Box<[u8]>>) {
        out.psubs.extend(self.psubs.iter().cloned());
        for (name, members) in &self.qsubs {
            match names.iter().position(|n| n == name) {
                Some(i) => out.qsubs[i].extend(members.iter().cloned()),
                None => {
                    names.push(name.clone());
                    out.qsubs.push(members.clone());
                }
            }
        }
    }

    /// Collects every subscription matching `tokens` below this node. Iterative (an explicit
    /// stack), so a subject of any depth cannot overflow the thread's stack; the order is
    /// that of a depth-first walk: `>`, then `*`, then the literal token.
    fn match_tokens(&self, tokens: &[&[u8]], out: &mut SubResult<T>, names: &mut Vec<Box<[u8]>>) {
        let mut stack: Vec<(&Node<T>, usize)> = vec![(self, 0)];
        while let Some((node, i)) = stack.pop() {
            let Some(token) = tokens.get(i) else {
                node.collect(out, names);
                continue;
            };
            if let Some(fwc) = &node.fwc {
                fwc.collect(out, names);
            }
            if let Some(lit) = node.literal.get(*token) {
                stack.push((lit, i + 1));
            }
            if let Some(pwc) = &node.pwc {
                stack.push((pwc, i + 1));
            }
        }
    }

    /// The child for `token`, if there is one.
    fn child(&self, token: &[u8]) -> Option<&Node<T>> {
        match token {
            b"*" => self.pwc.as_deref(),
            b">" => self.fwc.as_deref(),
            _ => self.literal.get(token),
        }
    }

    fn child_mut_existing(&mut self, token: &[u8]) -> Option<&mut Node<T>> {
        match token {
            b"*" => self.pwc.as_deref_mut(),
            b">" => self.fwc.as_deref_mut(),
            _ => self.literal.get_mut(token),
        }
    }

    /// Detaches the child for `token` (it is dropped by the caller, iteratively).
    fn detach(&mut self, token: &[u8]) -> Option<Node<T>> {
        match token {
            b"*" => self.pwc.take().map(|b| *b),
            b">" => self.fwc.take().map(|b| *b),
            _ => self.literal.remove(token),
        }
    }

    fn has_subs(&self) -> bool {
        !self.psubs.is_empty() || !self.qsubs.is_empty()
    }

    fn children(&self) -> usize {
        self.literal.len() + usize::from(self.pwc.is_some()) + usize::from(self.fwc.is_some())
    }

    /// Removes `entry` (subscribed to `tokens`) below this node and prunes the nodes left
    /// empty; returns whether it was found. Iterative, like matching.
    fn remove(&mut self, tokens: &[&[u8]], entry: &Arc<T>, queue: Option<&[u8]>) -> bool {
        let mut node = &mut *self;
        for t in tokens {
            match node.child_mut_existing(t) {
                Some(child) => node = child,
                None => return false,
            }
        }
        let found = match queue {
            None => remove_ptr(&mut node.psubs, entry),
            Some(q) => match node.qsubs.iter().position(|(n, _)| &**n == q) {
                None => false,
                Some(i) => {
                    let found = remove_ptr(&mut node.qsubs[i].1, entry);
                    if node.qsubs[i].1.is_empty() {
                        node.qsubs.swap_remove(i);
                    }
                    found
                }
            },
        };
        if found {
            self.prune(tokens);
        }
        found
    }

    /// Cuts the longest tail of the path `tokens` whose nodes hold nothing but that path.
    fn prune(&mut self, tokens: &[&[u8]]) {
        // The shallowest depth from which every node on the path is removable.
        let mut cut = None;
        let mut node: &Node<T> = self;
        for (depth, t) in tokens.iter().enumerate() {
            let Some(child) = node.child(t) else { return };
            let last = depth + 1 == tokens.len();
            let removable = !child.has_subs() && child.children() == usize::from(!last);
            match (removable, cut) {
                (true, None) => cut = Some(depth),
                (false, _) => cut = None,
                _ => {}
            }
            node = child;
        }
        let Some(depth) = cut else { return };
        let mut parent = &mut *self;
        for t in &tokens[..depth] {
            match parent.child_mut_existing(t) {
                Some(child) => parent = child,
                None => return,
            }
        }
        drop(parent.detach(tokens[depth]));
    }
}

impl<T> Drop for Node<T> {
    /// Drops the subtree without recursion: a chain of 500,000 nodes must not overflow the
    /// stack.
    fn drop(&mut self) {
        let mut pending: Vec<Node<T>> = Vec::new();
        let take = |n: &mut Node<T>, into: &mut Vec<Node<T>>| {
            into.extend(std::mem::take(&mut n.literal).into_values());
            into.extend(n.pwc.take().map(|b| *b));
            into.extend(n.fwc.take().map(|b| *b));
        };
        take(self, &mut pending);
        while let Some(mut n) = pending.pop() {
            take(&mut n, &mut pending);
        }
    }
}

fn remove_ptr<T>(list: &mut Vec<Arc<T>>, entry: &Arc<T>) -> bool {
    match list.iter().position(|e| Arc::ptr_eq(e, entry)) {
        Some(i) => {
            list.swap_remove(i);
            true
        }
        None => false,
    }
}

/// Splits into tokens without allocating for subjects of up to 32 tokens.
fn tokens(subject: &[u8]) -> smallvec_tokens::Tokens<'_> {
    smallvec_tokens::Tokens::new(subject)
}

mod smallvec_tokens {
    /// A fixed-capacity token list on the stack; longer subjects spill to the heap.
    pub struct Tokens<'a> {
        inline: [&'a [u8]; 32],
        len: usize,
        spill: Vec<&'a [u8]>,
    }

    impl<'a> Tokens<'a> {
        pub fn new(subject: &'a [u8]) -> Self {
            let mut t = Tokens {
                inline: [&[]; 32],
                len: 0,
                spill: Vec::new(),
            };
            for token in subject.split(|&b| b == b'.') {
                if t.len < t.inline.len() && t.spill.is_empty() {
                    t.inline[t.len] = token;
                    t.len += 1;
                } else {
                    if t.spill.is_empty() {
                        t.spill.extend_from_slice(&t.inline[..t.len]);
                    }
                    t.spill.push(token);
                }
            }
            t
        }

        pub fn as_slice(&self) -> &[&'a [u8]] {
            if self.spill.is_empty() {
                &self.inline[..self.len]
            } else {
                &self.spill
            }
        }
    }
}

/// The index itself. Cheap to share behind an `Arc`.
pub struct Sublist<T> {
    root: RwLock<Node<T>>,
    genid: AtomicU64,
    count: AtomicU64,
}

impl<T: Entry> Default for Sublist<T> {
    fn default() -> Self {
        Sublist {
            root: RwLock::new(Node::default()),
            genid: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
}

impl<T: Entry> Sublist<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Generation: changes on every insert/remove; caches compare it to detect staleness.
    #[inline]
    pub fn genid(&self) -> u64 {
        self.genid.load(Ordering::Acquire)
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Inserts a subscription. The subject must already be validated.
    pub fn insert(&self, entry: Arc<T>) {
        let toks = tokens(entry.subject());
        let mut root = self.root.write();
        let mut node = &mut *root;
        for t in toks.as_slice() {
            node = node.child_mut(t);
        }
        match entry.queue() {
            None => node.psubs.push(entry.clone()),
            Some(q) => match node.qsubs.iter_mut().find(|(n, _)| &**n == q) {
                Some((_, members)) => members.push(entry.clone()),
                None => node.qsubs.push((q.into(), vec![entry.clone()])),
            },
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.genid.fetch_add(1, Ordering::Release);
    }

    /// Removes a subscription (by identity); returns whether it was present.
    pub fn remove(&self, entry: &Arc<T>) -> bool {
        let toks = tokens(entry.subject());
        let found = self
            .root
            .write()
            .remove(toks.as_slice(), entry, entry.queue());
        if found {
            self.count.fetch_sub(1, Ordering::Relaxed);
            self.genid.fetch_add(1, Ordering::Release);
        }
        found
    }

    /// All subscriptions interested in a published subject.
    pub fn matches(&self, subject: &[u8]) -> SubResult<T> {
        let toks = tokens(subject);
        let mut out = SubResult {
            psubs: Vec::new(),
            qsubs: Vec::new(),
        };
        let mut names = Vec::new();
        self.root
            .read()
            .match_tokens(toks.as_slice(), &mut out, &mut names);
        out
    }

    /// Every subscription, for monitoring.
    pub fn all(&self) -> Vec<Arc<T>> {
        let root = self.root.read();
        let mut out = Vec::new();
        let mut stack: Vec<&Node<T>> = vec![&root];
        while let Some(n) = stack.pop() {
            out.extend(n.psubs.iter().cloned());
            for (_, m) in &n.qsubs {
                out.extend(m.iter().cloned());
            }
            stack.extend(n.literal.values());
            stack.extend(n.pwc.as_deref());
            stack.extend(n.fwc.as_deref());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct S(&'static str, Option<&'static str>);
    impl Entry for S {
        fn subject(&self) -> &[u8] {
            self.0.as_bytes()
        }
        fn queue(&self) -> Option<&[u8]> {
            self.1.map(str::as_bytes)
        }
    }

    fn names(r: &SubResult<S>) -> Vec<&'static str> {
        let mut v: Vec<_> = r.psubs.iter().map(|s| s.0).collect();
        v.sort();
        v
    }

    #[test]
    fn literal_and_wildcard_matches() {
        let sl = Sublist::new();
        for s in [
            "foo.bar",
            "foo.*",
            "foo.>",
            ">",
            "*.bar",
            "foo.bar.baz",
            "baz",
        ] {
            sl.insert(Arc::new(S(s, None)));
        }
        assert_eq!(
            names(&sl.matches(b"foo.bar")),
            ["*.bar", ">", "foo.*", "foo.>", "foo.bar"]
        );
        assert_eq!(
            names(&sl.matches(b"foo.bar.baz")),
            [">", "foo.>", "foo.bar.baz"]
        );
        assert_eq!(names(&sl.matches(b"foo")), [">"]);
        assert_eq!(names(&sl.matches(b"nothing.here.at.all")), [">"]);
    }

    #[test]
    fn full_wildcard_needs_at_least_one_token() {
        let sl = Sublist::new();
        sl.insert(Arc::new(S("foo.>", None)));
        assert!(sl.matches(b"foo").is_empty());
        assert!(!sl.matches(b"foo.x").is_empty());
    }

    #[test]
    fn queue_groups_merge_by_name_across_nodes() {
        let sl = Sublist::new();
        sl.insert(Arc::new(S("foo.*", Some("q"))));
        sl.insert(Arc::new(S("foo.bar", Some("q"))));
        sl.insert(Arc::new(S("foo.bar", Some("r"))));
        let r = sl.matches(b"foo.bar");
        assert!(r.psubs.is_empty());
        let mut sizes: Vec<_> = r.qsubs.iter().map(Vec::len).collect();
        sizes.sort();
        assert_eq!(sizes, [1, 2]);
    }

    #[test]
    fn remove_prunes_and_bumps_generation() {
        let sl = Sublist::new();
        let a = Arc::new(S("a.b.c", None));
        let q = Arc::new(S("a.*", Some("g")));
        sl.insert(a.clone());
        sl.insert(q.clone());
        let g = sl.genid();
        assert!(sl.remove(&a));
        assert!(!sl.remove(&a));
        assert!(sl.remove(&q));
        assert!(sl.genid() > g);
        assert_eq!(sl.count(), 0);
        let root = sl.root.read();
        assert!(root.children() == 0 && !root.has_subs());
    }

    #[test]
    fn long_subjects_spill_without_losing_tokens() {
        let long: String = (0..40)
            .map(|i| format!("t{i}"))
            .collect::<Vec<_>>()
            .join(".");
        let leaked: &'static str = Box::leak(long.into_boxed_str());
        let sl = Sublist::new();
        sl.insert(Arc::new(S(leaked, None)));
        assert_eq!(sl.matches(leaked.as_bytes()).psubs.len(), 1);
        assert!(sl.matches(b"t0.t1").is_empty());
    }

    #[test]
    fn subjects_of_any_depth_match_remove_and_drop_without_recursion() {
        let deep = vec!["a"; 500_000].join(".");
        let wild = format!("{}.>", vec!["*"; 499_999].join("."));
        let l = Sublist::new();
        let leak = |s: &str| -> &'static str { Box::leak(s.to_string().into_boxed_str()) };
        let exact = Arc::new(S(leak(&deep), None));
        let pattern = Arc::new(S(leak(&wild), None));
        l.insert(exact.clone());
        l.insert(pattern.clone());
        let r = l.matches(deep.as_bytes());
        assert_eq!(r.psubs.len(), 2);
        assert!(l.remove(&exact));
        assert_eq!(l.matches(deep.as_bytes()).psubs.len(), 1);
        assert_eq!(l.all().len(), 1);
        drop(l); // a 500,000-node chain is still in it
    }
}
