//! The documents contract, run against every implementation (the redis store's run in
//! `store/redis/documents.rs`).

use super::*;

fn s(v: &str) -> String {
    v.to_string()
}

/// Writing, reading, listing, removing, versions and bounds.
pub(crate) async fn documents_follow_the_contract(d: &dyn Documents, c: &str) {
    assert_eq!(d.version(c).await.unwrap(), 0);
    assert!(d.list(c, 10).await.unwrap().is_empty());
    d.put(c, &[(s("b"), s("2")), (s("a"), s("1"))])
        .await
        .unwrap();
    let v1 = d.version(c).await.unwrap();
    assert!(v1 > 0);
    assert_eq!(
        d.get(c, &[s("a"), s("x"), s("b")]).await.unwrap(),
        vec![Some(s("1")), None, Some(s("2"))]
    );
    assert_eq!(
        d.list(c, 10).await.unwrap(),
        vec![(s("a"), s("1")), (s("b"), s("2"))]
    );
    assert_eq!(d.list(c, 1).await.unwrap().len(), 1);
    // Another collection sees nothing of it.
    let other = format!("{c}-other");
    assert!(d.list(&other, 10).await.unwrap().is_empty());
    assert_eq!(d.version(&other).await.unwrap(), 0);

    // Replace; remove_if only at the value read.
    d.put(c, &[(s("a"), s("1b"))]).await.unwrap();
    let v2 = d.version(c).await.unwrap();
    assert_ne!(v1, v2);
    assert!(
        !d.remove_if(c, "a", "1").await.unwrap(),
        "changed meanwhile"
    );
    assert!(d.remove_if(c, "a", "1b").await.unwrap());
    assert!(!d.remove_if(c, "a", "1b").await.unwrap(), "gone");
    assert_eq!(d.remove(c, &[s("b"), s("zz")]).await.unwrap(), 1);
    assert!(d.list(c, 10).await.unwrap().is_empty());
    assert_ne!(d.version(c).await.unwrap(), v2);

    // Bounds: refused, nothing written.
    let big = "x".repeat(DEFAULT_MAX_DOCUMENT_BYTES + 1);
    let err = d
        .put(c, &[(s("ok"), s("1")), (s("big"), big)])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Rejected(_)), "{err}");
    assert!(d.put(c, &[(s(""), s("1"))]).await.is_err());
    assert!(d.list(c, 10).await.unwrap().is_empty());
}

#[actix_rt::test]
async fn memory_documents_follow_the_contract() {
    documents_follow_the_contract(&MemoryDocuments::default(), "c").await;
}
