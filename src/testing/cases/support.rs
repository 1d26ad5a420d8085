//! Helpers the cases share.

use std::collections::HashMap;
use std::time::Duration;

use crate::{Cache, Timeout};

pub(super) const D: Timeout = Timeout::Default;

pub(super) fn secs(n: u64) -> Timeout {
    Timeout::After(Duration::from_secs(n))
}

pub(super) async fn sleep_secs(n: u64) {
    tokio::time::sleep(Duration::from_secs(n)).await;
}

pub(super) async fn expect_str(cache: &Cache, key: &str, want: Option<&str>) {
    let got = cache.get::<String>(key).await.expect("get");
    assert_eq!(got.as_deref(), want, "{key}");
}

pub(super) async fn get_int(cache: &Cache, key: &str) -> Option<i64> {
    cache.get::<i64>(key).await.expect("get")
}

pub(super) fn map<V: Clone>(pairs: &[(&str, V)]) -> HashMap<String, V> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}
