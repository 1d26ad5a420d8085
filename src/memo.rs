//! [`Memo`]: room beside an in-process entry for a decoded form of it.

use std::any::Any;
use std::fmt;
use std::sync::{Arc, OnceLock};

/// Room beside an entry of an in-process backend for one decoded form of
/// its bytes, filled by the first reader that decodes them and read by the
/// next ones (the HTTP layers keep a page's parsed status, headers and
/// freshness there, so that a hit does not parse the entry again).
///
/// A memo lives and dies with its entry: storing the key again makes a new
/// entry with an empty memo, so a memo never outlives the bytes it was
/// decoded from. Backends that keep entries in another process have none
/// ([`Memo::none`]), and [`CacheBackend::get_memoized`] falls back to
/// [`get`](crate::CacheBackend::get).
///
/// ```
/// use tower_cache::Memo;
///
/// let memo = Memo::new();
/// assert!(memo.get::<u32>().is_none());
/// memo.set(42_u32);
/// memo.set(7_u32); // the first form stays
/// assert_eq!(memo.get::<u32>(), Some(&42));
/// assert!(memo.get::<String>().is_none()); // another type reads nothing
/// assert!(Memo::none().get::<u32>().is_none());
/// ```
///
/// [`CacheBackend::get_memoized`]: crate::CacheBackend::get_memoized
#[derive(Clone, Default)]
pub struct Memo(Option<Arc<OnceLock<Box<dyn Any + Send + Sync>>>>);

impl Memo {
    /// An empty memo, for a backend to keep beside a new entry (one small
    /// allocation).
    pub fn new() -> Memo {
        Memo(Some(Arc::default()))
    }

    /// No memo: what a backend without one hands out. It keeps nothing.
    pub const fn none() -> Memo {
        Memo(None)
    }

    /// The decoded form, if one of type `T` was set.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0.as_ref()?.get()?.downcast_ref()
    }

    /// Keeps `form`, unless a form was set already (the first one stays:
    /// every reader decodes the same bytes).
    pub fn set<T: Any + Send + Sync>(&self, form: T) {
        if let Some(slot) = &self.0 {
            // Already set by a concurrent reader: theirs is the same.
            let _ = slot.set(Box::new(form));
        }
    }

    /// Whether this memo can keep anything (it is not [`Memo::none`]).
    pub fn is_some(&self) -> bool {
        self.0.is_some()
    }
}

impl fmt::Debug for Memo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.0 {
            None => "none",
            Some(slot) if slot.get().is_some() => "set",
            Some(_) => "empty",
        };
        f.debug_tuple("Memo").field(&state).finish()
    }
}
