//! Timings of the certificate hot path: `cargo bench -p olympus-crypto`.
//!
//! No targets are asserted here; this prints microseconds per operation so regressions
//! and the effect of changes can be seen. Single-threaded, on the calling thread.

use olympus_crypto::{generate_committee, CertCache, Claim, Committee, Keypair, Scheme};
use olympus_types::{Digest, NodeId, Statement};
use std::hint::black_box;
use std::time::Instant;

fn time(name: &str, iters: u32, mut f: impl FnMut()) {
    f(); // warm up
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / f64::from(iters);
    println!("{name:<52} {us:>10.1} us");
}

fn votes(keys: &[Keypair], n: usize, m: &Digest) -> Vec<(NodeId, olympus_types::Signature)> {
    keys.iter().take(n).map(|k| (k.id(), k.sign(m))).collect()
}

fn bench(scheme: Scheme, n: usize, iters: u32) {
    let (c, keys): (Committee, Vec<Keypair>) = generate_committee(scheme, &[1; 32], n).unwrap();
    let q = 2 * n / 3 + 1;
    let m = Statement::new("bench/vote").u64(7).finish();
    let vs = votes(&keys, q, &m);
    let sig = keys[0].sign(&m);
    let agg = c.aggregate_unchecked(&vs);
    let tag = format!("{scheme} n={n} q={q}");
    time(&format!("{tag}: sign"), iters, || {
        black_box(keys[0].sign(black_box(&m)));
    });
    time(&format!("{tag}: verify"), iters, || {
        c.forget_verified();
        c.verify(NodeId(0), black_box(&m), black_box(&sig)).unwrap();
    });
    // A burst of k proposals from one leader: k checks, or one batch (`prime`) first.
    for k in [2u64, 4, 8] {
        let burst: Vec<_> = (0..k)
            .map(|i| {
                let d = Statement::new("bench/burst").u64(i).finish();
                (NodeId(0), d, keys[0].sign(&d))
            })
            .collect();
        let claims: Vec<Claim> = burst
            .iter()
            .map(|(s, d, sig)| Claim::Single(*s, *d, *sig))
            .collect();
        time(
            &format!("{tag}: {k} signatures, one verify each"),
            iters / 4,
            || {
                c.forget_verified();
                for (s, d, sig) in &burst {
                    c.verify(*s, d, sig).unwrap();
                }
            },
        );
        time(
            &format!("{tag}: {k} signatures, prime then verify"),
            iters / 4,
            || {
                c.forget_verified();
                assert_eq!(c.prime(black_box(&claims)), Some(k as usize));
                for (s, d, sig) in &burst {
                    c.verify(*s, d, sig).unwrap();
                }
            },
        );
    }
    // A proposal and the certificate it carries (a synchronous protocol's voter).
    let p = Statement::new("bench/proposal").finish();
    let psig = keys[0].sign(&p);
    let pair = [
        Claim::Single(NodeId(0), p, psig),
        Claim::Certificate(m, agg),
    ];
    time(
        &format!("{tag}: proposal + certificate, two checks"),
        iters / 4,
        || {
            c.forget_verified();
            c.verify(NodeId(0), &p, &psig).unwrap();
            c.verify_aggregate(&m, &agg, q).unwrap();
        },
    );
    time(
        &format!("{tag}: proposal + certificate, prime then check"),
        iters / 4,
        || {
            c.forget_verified();
            assert_eq!(c.prime(black_box(&pair)), Some(2));
            c.verify(NodeId(0), &p, &psig).unwrap();
            c.verify_aggregate(&m, &agg, q).unwrap();
        },
    );
    time(&format!("{tag}: verify_aggregate"), iters, || {
        c.forget_verified();
        c.verify_aggregate(black_box(&m), black_box(&agg), q)
            .unwrap();
    });
    let cache = CertCache::new();
    time(
        &format!("{tag}: verify_aggregate_cached (hit)"),
        iters,
        || {
            c.verify_aggregate_cached(&cache, black_box(&m), black_box(&agg), q)
                .unwrap();
        },
    );
    time(&format!("{tag}: aggregate (all good)"), iters, || {
        c.forget_verified();
        black_box(c.aggregate(black_box(&m), black_box(&vs)));
    });
    let mut with_bad = vs.clone();
    with_bad[0].1 = keys[0].sign(&Digest([0; 32]));
    time(
        &format!("{tag}: aggregate (one bad vote)"),
        (iters / 4).max(1),
        || {
            c.forget_verified();
            black_box(c.aggregate(black_box(&m), black_box(&with_bad)));
        },
    );
    let f = n / 3;
    let mut f_bad = vs.clone();
    for (i, v) in f_bad.iter_mut().enumerate().take(f) {
        v.1 = keys[i].sign(&Digest([0; 32]));
    }
    if f > 1 {
        time(
            &format!("{tag}: aggregate ({f} bad votes)"),
            (iters / 20).max(1),
            || {
                c.forget_verified();
                black_box(c.aggregate(black_box(&m), black_box(&f_bad)));
            },
        );
    }
    // Timeouts: q signers over 3 distinct messages.
    let ms: Vec<_> = (0..3u64)
        .map(|v| Statement::new("bench/timeout").u64(v).finish())
        .collect();
    let signed: Vec<_> = keys
        .iter()
        .take(q)
        .enumerate()
        .map(|(i, k)| (k.id(), ms[i % 3], k.sign(&ms[i % 3])))
        .collect();
    let multi = c.aggregate_multi_unchecked(&signed);
    let msgs: Vec<_> = signed.iter().map(|(id, m, _)| (*id, *m)).collect();
    time(
        &format!("{tag}: verify_aggregate_multi (3 msgs)"),
        iters,
        || {
            c.forget_verified();
            c.verify_aggregate_multi(black_box(&msgs), black_box(&multi), q)
                .unwrap();
        },
    );
}

/// `blst`'s own verification of one signature (thread-pooled), for comparison.
fn blst_reference() {
    use blst::min_sig::SecretKey;
    let sk = SecretKey::key_gen(&[1; 32], &[]).unwrap();
    let pk = sk.sk_to_pk();
    let sig = sk.sign(&[7; 32], olympus_crypto::DST_SIG, &[]);
    let bytes = sig.compress();
    time("blst Signature::verify (reference)", 200, || {
        let r = sig.verify(
            true,
            black_box(&[7; 32]),
            olympus_crypto::DST_SIG,
            &[],
            &pk,
            false,
        );
        assert_eq!(r, blst::BLST_ERROR::BLST_SUCCESS);
    });
    time(
        "blst Signature::from_bytes (G1 decompression)",
        2000,
        || {
            black_box(blst::min_sig::Signature::from_bytes(black_box(&bytes)).unwrap());
        },
    );
}

fn main() {
    blst_reference();
    for n in [4, 100] {
        bench(Scheme::Bls, n, 200);
    }
    bench(Scheme::Insecure, 100, 2000);
}
