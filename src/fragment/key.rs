//! `make_template_fragment_key`, as Django 6.1 makes it.

use std::fmt::{Display, Write};

use md5::{Digest, Md5};

use crate::hex::Hex;

/// Which Django's fragment key layout to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum KeyFormat {
    /// Django 6.1 and later: each vary-on value fed to the md5 as a
    /// netstring (`<byte length>:<text>,`).
    #[default]
    Django61,
    /// Django 3.1 to 6.0: each value followed by `:`. Ambiguous
    /// (`["a:b", "c"]` and `["a", "b:c"]` collide); use it only to share
    /// fragments with an older Django app.
    Legacy,
}

/// The cache key of a template fragment: Django's
/// `make_template_fragment_key(fragment_name, vary_on)`.
///
/// Each vary-on value is turned into text with `Display` (Django uses `str()`).
///
/// ```
/// use tower_cache::fragment::make_template_fragment_key;
///
/// assert_eq!(
///     make_template_fragment_key("foo", ["abc"]),
///     "template.cache.foo.a6360ec2c58ecc4b23fd5bd00216fccd"
/// );
/// assert_eq!(
///     make_template_fragment_key("foo", [1, 2, 3, 4, 5]),
///     "template.cache.foo.087c006c1b99e0d147f624b4921f8a13"
/// );
/// ```
pub fn make_template_fragment_key<I>(fragment_name: &str, vary_on: I) -> String
where
    I: IntoIterator,
    I::Item: Display,
{
    make_template_fragment_key_with(KeyFormat::Django61, fragment_name, vary_on)
}

/// [`make_template_fragment_key`] in the given [`KeyFormat`].
pub fn make_template_fragment_key_with<I>(
    format: KeyFormat,
    fragment_name: &str,
    vary_on: I,
) -> String
where
    I: IntoIterator,
    I::Item: Display,
{
    let mut hasher = Md5::new();
    let mut text = String::new();
    for value in vary_on {
        text.clear();
        let _ = write!(text, "{value}");
        match format {
            KeyFormat::Django61 => {
                hasher.update(itoa::Buffer::new().format(text.len()).as_bytes());
                hasher.update(b":");
                hasher.update(text.as_bytes());
                hasher.update(b",");
            }
            KeyFormat::Legacy => {
                hasher.update(text.as_bytes());
                hasher.update(b":");
            }
        }
    }
    format!("template.cache.{fragment_name}.{}", Hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTHING: [&str; 0] = [];

    /// Django 6.1.3's own test vectors (`tests/cache/tests.py`, TestMakeTemplateFragmentKey).
    #[test]
    fn matches_django_61_vectors() {
        let cases: [(&str, Vec<String>, &str); 6] = [
            (
                "a.fragment",
                vec![],
                "template.cache.a.fragment.d41d8cd98f00b204e9800998ecf8427e",
            ),
            (
                "foo",
                vec!["abc".into()],
                "template.cache.foo.a6360ec2c58ecc4b23fd5bd00216fccd",
            ),
            (
                "bar",
                vec!["abc".into(), "def".into()],
                "template.cache.bar.250310c146db454966b64f5fc265a540",
            ),
            (
                "spam",
                vec!["abc:def%".into()],
                "template.cache.spam.bf6c24ef2576004284e0522c15314d8c",
            ),
            (
                "foo",
                vec!["42º".into(), "😀".into()],
                "template.cache.foo.ab66482052ab2084b9d25bdd04bc9b10",
            ),
            (
                "foo",
                vec!["x".repeat(10_000)],
                "template.cache.foo.abff8a6702abde497feae7f61de2ef1e",
            ),
        ];
        for (name, vary_on, expected) in cases {
            assert_eq!(
                make_template_fragment_key(name, &vary_on),
                expected,
                "{name} {vary_on:?}"
            );
        }
        assert_eq!(
            make_template_fragment_key("foo", [1, 2, 3, 4, 5]),
            "template.cache.foo.087c006c1b99e0d147f624b4921f8a13"
        );
        assert_eq!(
            make_template_fragment_key("a.fragment", NOTHING),
            "template.cache.a.fragment.d41d8cd98f00b204e9800998ecf8427e"
        );
    }

    #[test]
    fn netstrings_keep_values_apart() {
        assert_ne!(
            make_template_fragment_key("x", ["a:b", "c"]),
            make_template_fragment_key("x", ["a", "b:c"])
        );
    }

    /// Django 5.2.19's vectors, for the legacy layout.
    #[test]
    fn matches_legacy_vectors() {
        let legacy =
            |vary_on: &[&str]| make_template_fragment_key_with(KeyFormat::Legacy, "foo", vary_on);
        assert_eq!(
            legacy(&["abc"]),
            "template.cache.foo.493e283d571a73056196f1a68efd0f66"
        );
        assert_eq!(
            legacy(&["abc", "def"]),
            "template.cache.foo.17c1a507a0cb58384f4c639067a93520"
        );
        assert_eq!(
            legacy(&["abc:def%"]),
            "template.cache.foo.06c8ae8e8c430b69fb0a6443504153dc"
        );
        assert_eq!(
            legacy(&["42º", "😀"]),
            "template.cache.foo.7ced1c94e543668590ba39b3c08b0237"
        );
        assert_eq!(
            make_template_fragment_key_with(KeyFormat::Legacy, "foo", [1, 2, 3, 4, 5]),
            "template.cache.foo.7ae8fd2e0d25d651c683bdeebdb29461"
        );
        assert_eq!(
            legacy(&[&"x".repeat(10_000)]),
            "template.cache.foo.3670b349b5124aa56bdb50678b02b23a"
        );
    }
}
