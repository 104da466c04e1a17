//! What the rules see of the state for one call: the stripe of the call's key, held from
//! the first question to the last (so the checks see one state of the key), and the
//! questions across keys answered from the allocation table and every stripe in turn.

use super::keys::{Export, Import, Keys};
use super::{ProcessState, Region};
use crate::key::{Fp, Key};
use crate::sync::PlainGuard;
use std::cell::Cell;

/// The state as the checks of one call read it.
pub struct View<'a> {
    state: &'a ProcessState,
    /// The call's key's stripe (its index and guard), when the call has a key.
    held: Option<(usize, PlainGuard<'a, Keys>)>,
    /// Another key this view named in an answer (the last), with its bytes as they were
    /// then: a record names a key by its bytes' fingerprint, and another thread may close
    /// the key before the record asks (`raw_key`). A call's checks name one at most.
    named: Cell<Option<(Fp, Option<Key>)>>,
}

impl<'a> View<'a> {
    #[inline]
    pub(super) fn new(
        state: &'a ProcessState,
        held: Option<(usize, PlainGuard<'a, Keys>)>,
    ) -> View<'a> {
        View {
            state,
            held,
            named: Cell::new(None),
        }
    }

    #[inline]
    fn held(&self) -> Option<(usize, &Keys)> {
        self.held.as_ref().map(|(i, k)| (*i, &**k))
    }

    /// The held stripe, if `fp` is in it.
    #[inline]
    fn keys_for(&self, fp: &Fp) -> Option<&Keys> {
        self.held
            .as_ref()
            .filter(|(i, _)| *i == super::stripe_of(fp))
            .map(|(_, k)| &**k)
    }

    /// The open export `fp`: the call's key (a view holds only its call's key's stripe;
    /// the checks ask about no other key's export).
    #[inline]
    pub fn export(&self, fp: &Fp) -> Option<&Export> {
        debug_assert!(
            self.held.is_some(),
            "a call without a key asks for an export"
        );
        self.keys_for(fp).and_then(|k| k.export(fp))
    }

    /// The open import `fp`: the call's key, as `export`.
    #[inline]
    pub fn import(&self, fp: &Fp) -> Option<&Import> {
        debug_assert!(
            self.held.is_some(),
            "a call without a key asks for an import"
        );
        self.keys_for(fp).and_then(|k| k.import(fp))
    }

    /// The key of an open export or import with identity `fp`, when it was given: as it
    /// was when an answer named it, else from the held stripe, else from `fp`'s (taken
    /// for the question, when nothing is held or it is free: see
    /// `ProcessState::each_stripe`).
    pub fn raw_key(&self, fp: &Fp) -> Option<Key> {
        if let Some((_, key)) = self.named.get().filter(|(f, _)| f == fp) {
            return key;
        }
        match (self.keys_for(fp), &self.held) {
            (Some(k), _) => k.raw_key(fp),
            (None, None) => self.state.raw_key(fp),
            (None, Some(_)) => self.state.stripes[super::stripe_of(fp)]
                .0
                .try_lock()
                .and_then(|k| k.raw_key(fp)),
        }
    }

    /// Where `addr` lies (`ProcessState::region_of`).
    pub fn region_of(&self, addr: usize) -> Region {
        if let Some((base, size)) = self.state.alloc_holding(addr) {
            return Region::Allocated { base, size };
        }
        match self.state.import_holding(addr, self.held()) {
            Some((fp, key)) => {
                self.named.set(Some((fp, key)));
                Region::Imported { fp }
            }
            None => Region::Unknown,
        }
    }

    /// When `addr` was returned by an import, open or closed since: the identity of the
    /// key it was imported with, when the key was given (the view names it, with its
    /// bytes, for the record).
    pub fn import_returned_at(&self, addr: usize) -> Option<Option<Fp>> {
        let key = self.state.import_returned_at(addr, self.held())?;
        Some(key.map(|key| {
            self.named.set(Some((key.fp, Some(key))));
            key.fp
        }))
    }

    /// An open export made from the allocation starting at `base`, if there is one
    /// (`ProcessState::exports_freed_with`).
    pub fn an_export_of(&self, base: usize) -> Option<Fp> {
        let (fp, key) = self.state.first_export_of(base, self.held())?;
        self.named.set(Some((fp, key)));
        Some(fp)
    }
}
