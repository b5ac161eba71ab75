//! BLAKE3's keyed hash of up to [`LANES`] short inputs at once. A row is one
//! or two 64-byte blocks, where BLAKE3's own SIMD (which runs the chunks of
//! one long input side by side) has nothing to run beside it; here each
//! state word holds that word of every lane, so one vector instruction
//! advances all the rows of a batch. Inputs longer than one chunk (1 KiB)
//! go to `blake3::keyed_hash`. The tests compare every lane with the
//! crate's own hash, over lengths around every block edge.

/// Inputs hashed side by side: eight 32-bit lanes fill a 256-bit register.
pub const LANES: usize = 8;

const BLOCK_LEN: usize = 64;
/// A longer input spans chunks, which this file does not implement.
const CHUNK_LEN: usize = 1024;

// BLAKE3's constants (its specification, section 2).
const IV: [u32; 8] = [
    0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
];
const SCHEDULE: [[usize; 16]; 7] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8],
    [3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1],
    [10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6],
    [12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4],
    [9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7],
    [11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13],
];
const CHUNK_START: u32 = 1 << 0;
const CHUNK_END: u32 = 1 << 1;
const ROOT: u32 = 1 << 3;
const KEYED_HASH: u32 = 1 << 4;

/// One 32-bit word of every lane.
type Words = [u32; LANES];

/// BLAKE3's quarter-round on every lane.
#[inline(always)]
fn g(v: &mut [Words; 16], [a, b, c, d]: [usize; 4], x: &Words, y: &Words) {
    for i in 0..LANES {
        v[a][i] = v[a][i].wrapping_add(v[b][i]).wrapping_add(x[i]);
        v[d][i] = (v[d][i] ^ v[a][i]).rotate_right(16);
        v[c][i] = v[c][i].wrapping_add(v[d][i]);
        v[b][i] = (v[b][i] ^ v[c][i]).rotate_right(12);
        v[a][i] = v[a][i].wrapping_add(v[b][i]).wrapping_add(y[i]);
        v[d][i] = (v[d][i] ^ v[a][i]).rotate_right(8);
        v[c][i] = v[c][i].wrapping_add(v[d][i]);
        v[b][i] = (v[b][i] ^ v[c][i]).rotate_right(7);
    }
}

/// One block of every lane: `cv` becomes the compression's chaining value
/// in the lanes whose `take` is set, and stays as it was in the others.
#[inline(always)]
fn compress(cv: &mut [Words; 8], m: &[Words; 16], len: &Words, flags: &Words, take: &Words) {
    let mut v = [[0u32; LANES]; 16];
    v[..8].copy_from_slice(cv);
    for (w, iv) in IV[..4].iter().enumerate() {
        v[8 + w] = [*iv; LANES];
    }
    // Words 12 and 13, the chunk counter, stay 0: every input is one chunk.
    v[14] = *len;
    v[15] = *flags;
    for s in &SCHEDULE {
        g(&mut v, [0, 4, 8, 12], &m[s[0]], &m[s[1]]);
        g(&mut v, [1, 5, 9, 13], &m[s[2]], &m[s[3]]);
        g(&mut v, [2, 6, 10, 14], &m[s[4]], &m[s[5]]);
        g(&mut v, [3, 7, 11, 15], &m[s[6]], &m[s[7]]);
        g(&mut v, [0, 5, 10, 15], &m[s[8]], &m[s[9]]);
        g(&mut v, [1, 6, 11, 12], &m[s[10]], &m[s[11]]);
        g(&mut v, [2, 7, 8, 13], &m[s[12]], &m[s[13]]);
        g(&mut v, [3, 4, 9, 14], &m[s[14]], &m[s[15]]);
    }
    for w in 0..8 {
        for i in 0..LANES {
            let out = v[w][i] ^ v[w + 8][i];
            cv[w][i] = (out & take[i]) | (cv[w][i] & !take[i]);
        }
    }
}

/// One 64-byte block of each lane.
type Blocks<'a> = [&'a [u8; BLOCK_LEN]; LANES];

/// What one instruction set does for the lanes: `words` turns a block of
/// each lane into message words (word `w` of every lane in `m[w]`),
/// `compress` is [`compress`], `rows` turns chaining values back into each
/// lane's hash.
struct Kernel<W, C, R> {
    words: W,
    compress: C,
    rows: R,
}

/// The plain kernel's parts, as functions.
type WordsFn = fn(&Blocks<'_>) -> [Words; 16];
type CompressFn = fn(&mut [Words; 8], &[Words; 16], &Words, &Words, &Words);
type RowsFn = fn(&[Words; 8]) -> [[u8; 32]; LANES];

/// The plain transpositions, word by word.
#[inline(always)]
fn plain_words(blocks: &Blocks<'_>) -> [Words; 16] {
    let mut m = [[0u32; LANES]; 16];
    for (lane, block) in blocks.iter().enumerate() {
        for (w, word) in block.chunks_exact(4).enumerate() {
            m[w][lane] = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
        }
    }
    m
}

#[inline(always)]
fn plain_rows(cv: &[Words; 8]) -> [[u8; 32]; LANES] {
    let mut out = [[0u8; 32]; LANES];
    for (lane, o) in out.iter_mut().enumerate() {
        for (w, bytes) in o.chunks_exact_mut(4).enumerate() {
            bytes.copy_from_slice(&cv[w][lane].to_le_bytes());
        }
    }
    out
}

/// Copies a short tail (under one block) into a zeroed block with 8-byte
/// moves, not a `memcpy` call per row.
#[inline(always)]
fn copy_tail(dst: &mut [u8; BLOCK_LEN], src: &[u8]) {
    let n = src.len();
    if n >= 8 {
        let mut i = 0;
        while i + 8 <= n {
            dst[i..i + 8].copy_from_slice(&src[i..i + 8]);
            i += 8;
        }
        // The last 8 bytes again, overlapping: the bytes rewritten are the
        // same.
        dst[n - 8..n].copy_from_slice(&src[n - 8..]);
    } else {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = *s;
        }
    }
}

/// The lanes' work, compiled once per instruction set below.
#[inline(always)]
fn hash_lanes<W, C, R>(key: &[u8; 32], inputs: &[&[u8]], out: &mut [[u8; 32]], t: Kernel<W, C, R>)
where
    W: Fn(&Blocks<'_>) -> [Words; 16],
    C: Fn(&mut [Words; 8], &[Words; 16], &Words, &Words, &Words),
    R: Fn(&[Words; 8]) -> [[u8; 32]; LANES],
{
    let mut cv = [[0u32; LANES]; 8];
    for (w, k) in key.chunks_exact(4).enumerate() {
        cv[w] = [u32::from_le_bytes([k[0], k[1], k[2], k[3]]); LANES];
    }
    // Blocks per lane (an empty input is one empty block; 0 marks a lane
    // that is unused or hashed by the crate) and the last block's length.
    let mut blocks = [0u32; LANES];
    let mut last_len = [0u32; LANES];
    let mut steps = 0;
    for (lane, (input, o)) in inputs.iter().zip(out.iter_mut()).enumerate() {
        if input.len() <= CHUNK_LEN {
            let n = input.len().div_ceil(BLOCK_LEN).max(1);
            blocks[lane] = n as u32;
            last_len[lane] = (input.len() - (n - 1) * BLOCK_LEN) as u32;
            steps = steps.max(n as u32);
        } else {
            *o = *blake3::keyed_hash(key, input).as_bytes();
        }
    }
    // Each lane's short last block, zero-padded; lanes out of blocks read
    // zeros.
    let mut padded = [[0u8; BLOCK_LEN]; LANES];
    for (lane, pad) in padded.iter_mut().enumerate() {
        if blocks[lane] > 0 && last_len[lane] < BLOCK_LEN as u32 {
            let start = (blocks[lane] as usize - 1) * BLOCK_LEN;
            copy_tail(pad, &inputs[lane][start..]);
        }
    }
    const ZEROS: [u8; BLOCK_LEN] = [0; BLOCK_LEN];
    for b in 0..steps {
        let mut refs: Blocks<'_> = [&ZEROS; LANES];
        for (lane, r) in refs.iter_mut().enumerate() {
            if b + 1 == blocks[lane] && last_len[lane] < BLOCK_LEN as u32 {
                *r = &padded[lane];
            } else if b < blocks[lane] {
                let start = b as usize * BLOCK_LEN;
                if let Ok(block) = inputs[lane][start..start + BLOCK_LEN].try_into() {
                    *r = block;
                }
            }
        }
        let m = (t.words)(&refs);
        let mut len = [0u32; LANES];
        let mut flags = [0u32; LANES];
        let mut take = [0u32; LANES];
        for i in 0..LANES {
            let last = b + 1 == blocks[i];
            len[i] = if last { last_len[i] } else { BLOCK_LEN as u32 };
            flags[i] = KEYED_HASH
                | if b == 0 { CHUNK_START } else { 0 }
                | if last { CHUNK_END | ROOT } else { 0 };
            take[i] = if b < blocks[i] { u32::MAX } else { 0 };
        }
        (t.compress)(&mut cv, &m, &len, &flags, &take);
    }
    let hashes = (t.rows)(&cv);
    for ((o, h), &n) in out.iter_mut().zip(&hashes).zip(&blocks) {
        if n > 0 {
            *o = *h;
        }
    }
}

/// The plain kernel, for any CPU.
fn plain() -> Kernel<WordsFn, CompressFn, RowsFn> {
    Kernel {
        words: plain_words,
        compress,
        rows: plain_rows,
    }
}

/// An 8 × 8 transposition of 32-bit words: register `i` of the result
/// holds word `i` of each input register, in order.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn transpose8(r: [std::arch::x86_64::__m256i; 8]) -> [std::arch::x86_64::__m256i; 8] {
    use std::arch::x86_64::*;
    let t0 = _mm256_unpacklo_epi32(r[0], r[1]);
    let t1 = _mm256_unpackhi_epi32(r[0], r[1]);
    let t2 = _mm256_unpacklo_epi32(r[2], r[3]);
    let t3 = _mm256_unpackhi_epi32(r[2], r[3]);
    let t4 = _mm256_unpacklo_epi32(r[4], r[5]);
    let t5 = _mm256_unpackhi_epi32(r[4], r[5]);
    let t6 = _mm256_unpacklo_epi32(r[6], r[7]);
    let t7 = _mm256_unpackhi_epi32(r[6], r[7]);
    let u0 = _mm256_unpacklo_epi64(t0, t2);
    let u1 = _mm256_unpackhi_epi64(t0, t2);
    let u2 = _mm256_unpacklo_epi64(t1, t3);
    let u3 = _mm256_unpackhi_epi64(t1, t3);
    let u4 = _mm256_unpacklo_epi64(t4, t6);
    let u5 = _mm256_unpackhi_epi64(t4, t6);
    let u6 = _mm256_unpacklo_epi64(t5, t7);
    let u7 = _mm256_unpackhi_epi64(t5, t7);
    [
        _mm256_permute2x128_si256(u0, u4, 0x20),
        _mm256_permute2x128_si256(u1, u5, 0x20),
        _mm256_permute2x128_si256(u2, u6, 0x20),
        _mm256_permute2x128_si256(u3, u7, 0x20),
        _mm256_permute2x128_si256(u0, u4, 0x31),
        _mm256_permute2x128_si256(u1, u5, 0x31),
        _mm256_permute2x128_si256(u2, u6, 0x31),
        _mm256_permute2x128_si256(u3, u7, 0x31),
    ]
}

/// [`plain_words`] with AVX2: each lane's half block is one register.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn avx2_words(blocks: &Blocks<'_>) -> [Words; 16] {
    use std::arch::x86_64::*;
    let mut m = [[0u32; LANES]; 16];
    for half in 0..2 {
        // SAFETY: each block is 64 bytes, so bytes 32 * half .. + 32 are in
        // it; unaligned loads.
        let r = std::array::from_fn(|lane| unsafe {
            _mm256_loadu_si256(blocks[lane].as_ptr().add(32 * half).cast())
        });
        for (w, v) in transpose8(r).into_iter().enumerate() {
            // SAFETY: a `[u32; 8]` is 32 bytes; unaligned store.
            unsafe { _mm256_storeu_si256(m[8 * half + w].as_mut_ptr().cast(), v) };
        }
    }
    m
}

/// [`compress`] with AVX2, each state word of every lane in one register.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn avx2_compress(cv: &mut [Words; 8], m: &[Words; 16], len: &Words, flags: &Words, take: &Words) {
    use std::arch::x86_64::*;
    // SAFETY (every load and store below): a `[u32; 8]` is 32 bytes;
    // unaligned.
    let load = |w: &Words| unsafe { _mm256_loadu_si256(w.as_ptr().cast()) };
    let m: [__m256i; 16] = std::array::from_fn(|w| load(&m[w]));
    let mut v: [__m256i; 16] = [_mm256_setzero_si256(); 16];
    for w in 0..8 {
        v[w] = load(&cv[w]);
    }
    for w in 0..4 {
        v[8 + w] = _mm256_set1_epi32(IV[w] as i32);
    }
    v[14] = load(len);
    v[15] = load(flags);
    // Rotations by whole bytes are byte shuffles within each word.
    let rot16 = _mm256_setr_epi8(
        2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9,
        14, 15, 12, 13,
    );
    let rot8 = _mm256_setr_epi8(
        1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12, 1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8,
        13, 14, 15, 12,
    );
    macro_rules! g {
        ($a:expr, $b:expr, $c:expr, $d:expr, $x:expr, $y:expr) => {
            v[$a] = _mm256_add_epi32(_mm256_add_epi32(v[$a], v[$b]), $x);
            v[$d] = _mm256_shuffle_epi8(_mm256_xor_si256(v[$d], v[$a]), rot16);
            v[$c] = _mm256_add_epi32(v[$c], v[$d]);
            let t = _mm256_xor_si256(v[$b], v[$c]);
            v[$b] = _mm256_or_si256(_mm256_srli_epi32::<12>(t), _mm256_slli_epi32::<20>(t));
            v[$a] = _mm256_add_epi32(_mm256_add_epi32(v[$a], v[$b]), $y);
            v[$d] = _mm256_shuffle_epi8(_mm256_xor_si256(v[$d], v[$a]), rot8);
            v[$c] = _mm256_add_epi32(v[$c], v[$d]);
            let t = _mm256_xor_si256(v[$b], v[$c]);
            v[$b] = _mm256_or_si256(_mm256_srli_epi32::<7>(t), _mm256_slli_epi32::<25>(t));
        };
    }
    for s in &SCHEDULE {
        g!(0, 4, 8, 12, m[s[0]], m[s[1]]);
        g!(1, 5, 9, 13, m[s[2]], m[s[3]]);
        g!(2, 6, 10, 14, m[s[4]], m[s[5]]);
        g!(3, 7, 11, 15, m[s[6]], m[s[7]]);
        g!(0, 5, 10, 15, m[s[8]], m[s[9]]);
        g!(1, 6, 11, 12, m[s[10]], m[s[11]]);
        g!(2, 7, 8, 13, m[s[12]], m[s[13]]);
        g!(3, 4, 9, 14, m[s[14]], m[s[15]]);
    }
    let take = load(take);
    for w in 0..8 {
        let out = _mm256_xor_si256(v[w], v[w + 8]);
        let kept = _mm256_blendv_epi8(load(&cv[w]), out, take);
        // SAFETY: as above.
        unsafe { _mm256_storeu_si256(cv[w].as_mut_ptr().cast(), kept) };
    }
}

/// [`plain_rows`] with AVX2: one transposition, one store per lane.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn avx2_rows(cv: &[Words; 8]) -> [[u8; 32]; LANES] {
    use std::arch::x86_64::*;
    // SAFETY: a `[u32; 8]` is 32 bytes; unaligned loads.
    let r = std::array::from_fn(|w| unsafe { _mm256_loadu_si256(cv[w].as_ptr().cast()) });
    let mut out = [[0u8; 32]; LANES];
    for (o, v) in out.iter_mut().zip(transpose8(r)) {
        // SAFETY: each hash is 32 bytes; unaligned store. Words are stored
        // in the machine's order, little-endian on x86-64, as BLAKE3's
        // output bytes are.
        unsafe { _mm256_storeu_si256(o.as_mut_ptr().cast(), v) };
    }
    out
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn hash_lanes_avx2(key: &[u8; 32], inputs: &[&[u8]], out: &mut [[u8; 32]]) {
    let t = Kernel {
        words: |b: &Blocks<'_>| avx2_words(b),
        compress: |cv: &mut [Words; 8],
                   m: &[Words; 16],
                   len: &Words,
                   flags: &Words,
                   take: &Words| { avx2_compress(cv, m, len, flags, take) },
        rows: |cv: &[Words; 8]| avx2_rows(cv),
    };
    hash_lanes(key, inputs, out, t)
}

/// The keyed BLAKE3 hash of each of `inputs` (at most [`LANES`]) into the
/// same place of `out`: exactly `blake3::keyed_hash(key, input)`.
pub fn keyed_hashes(key: &[u8; 32], inputs: &[&[u8]], out: &mut [[u8; 32]]) {
    assert!(inputs.len() <= LANES && out.len() >= inputs.len());
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, all this function requires.
        unsafe { hash_lanes_avx2(key, inputs, out) };
        return;
    }
    hash_lanes(key, inputs, out, plain())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference(key: &[u8; 32], inputs: &[&[u8]]) -> Vec<[u8; 32]> {
        inputs
            .iter()
            .map(|i| *blake3::keyed_hash(key, i).as_bytes())
            .collect()
    }

    type Variant = fn(&[u8; 32], &[&[u8]], &mut [[u8; 32]]);

    /// Every variant this CPU can run, the generic one first.
    fn variants() -> Vec<(&'static str, Variant)> {
        let mut v: Vec<(&'static str, Variant)> =
            vec![("generic", |k, i, o| hash_lanes(k, i, o, plain()))];
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx2") {
                // SAFETY: the CPU has AVX2.
                v.push(("avx2", |k, i, o| unsafe { hash_lanes_avx2(k, i, o) }));
            }
        }
        v
    }

    fn lanes(key: &[u8; 32], inputs: &[&[u8]]) -> Vec<[u8; 32]> {
        let mut out = vec![[0u8; 32]; inputs.len()];
        keyed_hashes(key, inputs, &mut out);
        out
    }

    /// Every length around a block edge and the chunk edge, in every lane
    /// and next to inputs of other lengths, on this machine's instruction
    /// set and on the generic code.
    #[test]
    fn every_edge_length_in_every_lane() {
        let key = [7u8; 32];
        let data: Vec<u8> = (0..4000u32).map(|i| (i * 31 + i / 7) as u8).collect();
        let mut lengths: Vec<usize> = (0..=17).map(|b| b * BLOCK_LEN).collect();
        lengths.extend(
            lengths
                .clone()
                .iter()
                .flat_map(|&n| [n.saturating_sub(1), n + 1]),
        );
        lengths.extend([2999, 2048, 2049]);
        for &n in &lengths {
            for lane in 0..LANES {
                let mut inputs: Vec<&[u8]> = (0..LANES).map(|i| &data[i..i + 10 * i]).collect();
                inputs[lane] = &data[lane..lane + n];
                assert_eq!(lanes(&key, &inputs), reference(&key, &inputs), "length {n}");
                for (name, variant) in variants() {
                    let mut got = vec![[0u8; 32]; LANES];
                    variant(&key, &inputs, &mut got);
                    assert_eq!(got, reference(&key, &inputs), "{name}, length {n}");
                }
            }
        }
    }

    /// The AVX2 transpositions are the plain ones, on blocks of distinct
    /// bytes (where a swapped word or lane shows).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn transpositions_agree() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        let blocks: Vec<[u8; BLOCK_LEN]> = (0..LANES)
            .map(|l| std::array::from_fn(|i| (i * 3 + l * 67) as u8))
            .collect();
        let refs: Blocks<'_> = std::array::from_fn(|l| &blocks[l]);
        // SAFETY: the CPU has AVX2.
        assert_eq!(unsafe { avx2_words(&refs) }, plain_words(&refs));
        let cv: [Words; 8] = std::array::from_fn(|w| std::array::from_fn(|l| (w * 100 + l) as u32));
        // SAFETY: the CPU has AVX2.
        assert_eq!(unsafe { avx2_rows(&cv) }, plain_rows(&cv));
    }

    /// Tails of every length under a block land as a copy would put them.
    #[test]
    fn tails_copy_exactly() {
        let src: Vec<u8> = (1..=BLOCK_LEN as u8).collect();
        for n in 0..BLOCK_LEN {
            let mut dst = [0u8; BLOCK_LEN];
            copy_tail(&mut dst, &src[..n]);
            assert_eq!(&dst[..n], &src[..n]);
            assert!(dst[n..].iter().all(|&b| b == 0), "length {n}");
        }
    }

    #[test]
    fn fewer_inputs_than_lanes_leave_the_rest_alone() {
        let key = [1u8; 32];
        let mut out = [[9u8; 32]; LANES];
        keyed_hashes(&key, &[b"a", b""], &mut out);
        assert_eq!(out[..2].to_vec(), reference(&key, &[b"a", b""]));
        assert!(out[2..].iter().all(|o| *o == [9u8; 32]));
        keyed_hashes(&key, &[], &mut []);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn equals_blake3(
            key in any::<[u8; 32]>(),
            inputs in proptest::collection::vec(
                proptest::collection::vec(any::<u8>(), 0..1200), 0..=LANES),
        ) {
            let inputs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
            let want = reference(&key, &inputs);
            prop_assert_eq!(lanes(&key, &inputs), want.clone());
            for (name, variant) in variants() {
                let mut got = vec![[0u8; 32]; inputs.len()];
                variant(&key, &inputs, &mut got);
                prop_assert_eq!(&got, &want, "{}", name);
            }
        }
    }
}
