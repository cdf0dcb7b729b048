//! A tiny PNG writer and rasterizer for the bench's plots, with no dependencies.
//!
//! - [`encode`] writes 8-bit RGB images: the PNG signature, then IHDR, one IDAT and IEND
//!   chunks, each with its CRC-32. The image data is a zlib stream of "stored"
//!   (uncompressed) deflate blocks of at most 65 535 bytes, ended by the Adler-32 of the
//!   filtered scanlines (filter type 0 on every line). Files are therefore about
//!   3 × width × height bytes: fine for a few plots per bench, and no compressor to trust.
//! - [`Canvas`] draws what a line chart needs: pixels, lines (Bresenham, optionally thick
//!   or dashed), rectangles and text in a built-in 5×7 pixel font (printable ASCII; other
//!   characters draw as `?`), scaled by an integer factor.
//!
//! Invariants: a canvas holds exactly `width × height` pixels; drawing outside it is
//! clipped, never a panic.

/// The 8 bytes every PNG file starts with.
pub const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
/// The most bytes one stored deflate block holds.
const MAX_STORED: usize = 65_535;

/// An RGB colour.
pub type Rgb = [u8; 3];

pub const WHITE: Rgb = [255, 255, 255];
pub const BLACK: Rgb = [0, 0, 0];

/// CRC-32 (ISO 3309, as PNG uses it: reflected polynomial 0xEDB88320, initial and final
/// value all ones).
pub fn crc32(data: &[u8]) -> u32 {
    crc32_update(0xffff_ffff, data) ^ 0xffff_ffff
}

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut n = 0;
    while n < 256 {
        let mut c = n as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[n] = c;
        n += 1;
    }
    table
}

static CRC_TABLE: [u32; 256] = crc_table();

fn crc32_update(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = CRC_TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

/// Adler-32 (RFC 1950).
pub fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    let (mut a, mut b) = (1u32, 0u32);
    // 5552 bytes is the most that can be summed before b may overflow a u32.
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

/// A zlib stream (RFC 1950) of stored deflate blocks (RFC 1951, BTYPE 00).
pub fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let blocks = data.len().div_ceil(MAX_STORED).max(1);
    let mut out = Vec::with_capacity(data.len() + 5 * blocks + 6);
    // CMF: deflate, 32 KiB window; FLG: no dictionary, fastest; (CMF*256+FLG) % 31 == 0.
    out.extend_from_slice(&[0x78, 0x01]);
    if data.is_empty() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    let mut chunks = data.chunks(MAX_STORED).peekable();
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        out.push(u8::from(last));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    // The CRC covers the chunk type and data, not the length.
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A PNG file of an 8-bit RGB image, `rgb` holding `width × height` pixels row by row.
pub fn encode(width: u32, height: u32, rgb: &[u8]) -> Vec<u8> {
    let (w, h) = (width as usize, height as usize);
    assert_eq!(rgb.len(), w * h * 3, "pixel buffer does not match the size");
    let mut raw = Vec::with_capacity(h * (1 + 3 * w));
    for row in rgb.chunks(3 * w.max(1)).take(h) {
        raw.push(0); // filter type: none
        raw.extend_from_slice(row);
    }
    let mut out = Vec::with_capacity(raw.len() + 128);
    out.extend_from_slice(&SIGNATURE);
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    // Bit depth 8, colour type 2 (RGB), deflate, adaptive filtering, no interlace.
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &zlib_stored(&raw));
    chunk(&mut out, b"IEND", &[]);
    out
}

/// An RGB raster to draw on.
pub struct Canvas {
    pub width: usize,
    pub height: usize,
    px: Vec<u8>,
}

impl Canvas {
    /// A canvas filled with `bg`.
    pub fn new(width: usize, height: usize, bg: Rgb) -> Canvas {
        let mut px = Vec::with_capacity(width * height * 3);
        for _ in 0..width * height {
            px.extend_from_slice(&bg);
        }
        Canvas { width, height, px }
    }

    /// The colour at (x, y), if inside.
    #[cfg(test)]
    pub fn get(&self, x: usize, y: usize) -> Option<Rgb> {
        (x < self.width && y < self.height).then(|| {
            let i = 3 * (y * self.width + x);
            [self.px[i], self.px[i + 1], self.px[i + 2]]
        })
    }

    /// Sets one pixel; outside the canvas does nothing.
    pub fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            let i = 3 * (y as usize * self.width + x as usize);
            self.px[i..i + 3].copy_from_slice(&c);
        }
    }

    /// A filled rectangle.
    pub fn fill_rect(&mut self, x: i64, y: i64, w: i64, h: i64, c: Rgb) {
        for yy in y..y + h {
            for xx in x..x + w {
                self.set(xx, yy, c);
            }
        }
    }

    /// A rectangle's outline.
    pub fn rect(&mut self, x: i64, y: i64, w: i64, h: i64, c: Rgb) {
        self.line(x, y, x + w - 1, y, c, 1, None);
        self.line(x, y + h - 1, x + w - 1, y + h - 1, c, 1, None);
        self.line(x, y, x, y + h - 1, c, 1, None);
        self.line(x + w - 1, y, x + w - 1, y + h - 1, c, 1, None);
    }

    /// A line from (x0, y0) to (x1, y1), `thick` pixels wide; `dash` = (on, off) pixel
    /// counts along the line.
    #[allow(clippy::too_many_arguments)]
    pub fn line(
        &mut self,
        x0: i64,
        y0: i64,
        x1: i64,
        y1: i64,
        c: Rgb,
        thick: i64,
        dash: Option<(u32, u32)>,
    ) {
        // Far outside points (a bad scale) would make this loop long: clip coarsely.
        let lim = 4 * (self.width + self.height) as i64;
        if [x0, y0, x1, y1].iter().any(|v| v.abs() > lim) {
            return;
        }
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        let mut step: u32 = 0;
        let lo = -(thick - 1) / 2;
        let hi = thick / 2;
        loop {
            let on = match dash {
                Some((a, b)) if a + b > 0 => step % (a + b) < a,
                _ => true,
            };
            if on {
                for oy in lo..=hi {
                    for ox in lo..=hi {
                        self.set(x + ox, y + oy, c);
                    }
                }
            }
            step = step.wrapping_add(1);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    /// Draws `text` with its top-left corner at (x, y), each font pixel `scale` × `scale`.
    /// Returns the width drawn.
    pub fn text(&mut self, x: i64, y: i64, text: &str, c: Rgb, scale: i64) -> i64 {
        let mut cx = x;
        for ch in text.chars() {
            let g = glyph(ch);
            for (col, bits) in g.iter().enumerate() {
                for row in 0..7 {
                    if bits >> row & 1 == 1 {
                        self.fill_rect(cx + col as i64 * scale, y + row * scale, scale, scale, c);
                    }
                }
            }
            cx += 6 * scale;
        }
        cx - x
    }

    /// Text rotated a quarter turn counter-clockwise (reads bottom to top), its
    /// bottom-left corner at (x, y).
    pub fn text_up(&mut self, x: i64, y: i64, text: &str, c: Rgb, scale: i64) {
        let mut cy = y;
        for ch in text.chars() {
            let g = glyph(ch);
            for (col, bits) in g.iter().enumerate() {
                for row in 0..7 {
                    if bits >> row & 1 == 1 {
                        self.fill_rect(
                            x + row * scale,
                            cy - (col as i64 + 1) * scale,
                            scale,
                            scale,
                            c,
                        );
                    }
                }
            }
            cy -= 6 * scale;
        }
    }

    /// The PNG file of the canvas.
    pub fn to_png(&self) -> Vec<u8> {
        encode(self.width as u32, self.height as u32, &self.px)
    }
}

/// Width in pixels of `text` at `scale`.
pub fn text_width(text: &str, scale: i64) -> i64 {
    (text.chars().count() as i64 * 6 - 1).max(0) * scale
}

/// The 5×7 glyph of a character: five columns, bit 0 the top row.
fn glyph(c: char) -> [u8; 5] {
    let c = match c {
        'µ' => 'u',
        '–' | '—' => '-',
        c => c,
    };
    let i = c as usize;
    if (0x20..0x7f).contains(&i) {
        FONT[i - 0x20]
    } else {
        FONT[usize::from(b'?' - 0x20)]
    }
}

/// The classic 5×7 LCD font, printable ASCII (0x20 to 0x7e), column by column.
#[rustfmt::skip]
const FONT: [[u8; 5]; 95] = [
    [0x00, 0x00, 0x00, 0x00, 0x00], [0x00, 0x00, 0x5f, 0x00, 0x00], [0x00, 0x07, 0x00, 0x07, 0x00],
    [0x14, 0x7f, 0x14, 0x7f, 0x14], [0x24, 0x2a, 0x7f, 0x2a, 0x12], [0x23, 0x13, 0x08, 0x64, 0x62],
    [0x36, 0x49, 0x55, 0x22, 0x50], [0x00, 0x05, 0x03, 0x00, 0x00], [0x00, 0x1c, 0x22, 0x41, 0x00],
    [0x00, 0x41, 0x22, 0x1c, 0x00], [0x08, 0x2a, 0x1c, 0x2a, 0x08], [0x08, 0x08, 0x3e, 0x08, 0x08],
    [0x00, 0x50, 0x30, 0x00, 0x00], [0x08, 0x08, 0x08, 0x08, 0x08], [0x00, 0x60, 0x60, 0x00, 0x00],
    [0x20, 0x10, 0x08, 0x04, 0x02], [0x3e, 0x51, 0x49, 0x45, 0x3e], [0x00, 0x42, 0x7f, 0x40, 0x00],
    [0x42, 0x61, 0x51, 0x49, 0x46], [0x21, 0x41, 0x45, 0x4b, 0x31], [0x18, 0x14, 0x12, 0x7f, 0x10],
    [0x27, 0x45, 0x45, 0x45, 0x39], [0x3c, 0x4a, 0x49, 0x49, 0x30], [0x01, 0x71, 0x09, 0x05, 0x03],
    [0x36, 0x49, 0x49, 0x49, 0x36], [0x06, 0x49, 0x49, 0x29, 0x1e], [0x00, 0x36, 0x36, 0x00, 0x00],
    [0x00, 0x56, 0x36, 0x00, 0x00], [0x08, 0x14, 0x22, 0x41, 0x00], [0x14, 0x14, 0x14, 0x14, 0x14],
    [0x00, 0x41, 0x22, 0x14, 0x08], [0x02, 0x01, 0x51, 0x09, 0x06], [0x32, 0x49, 0x79, 0x41, 0x3e],
    [0x7e, 0x11, 0x11, 0x11, 0x7e], [0x7f, 0x49, 0x49, 0x49, 0x36], [0x3e, 0x41, 0x41, 0x41, 0x22],
    [0x7f, 0x41, 0x41, 0x22, 0x1c], [0x7f, 0x49, 0x49, 0x49, 0x41], [0x7f, 0x09, 0x09, 0x09, 0x01],
    [0x3e, 0x41, 0x49, 0x49, 0x7a], [0x7f, 0x08, 0x08, 0x08, 0x7f], [0x00, 0x41, 0x7f, 0x41, 0x00],
    [0x20, 0x40, 0x41, 0x3f, 0x01], [0x7f, 0x08, 0x14, 0x22, 0x41], [0x7f, 0x40, 0x40, 0x40, 0x40],
    [0x7f, 0x02, 0x0c, 0x02, 0x7f], [0x7f, 0x04, 0x08, 0x10, 0x7f], [0x3e, 0x41, 0x41, 0x41, 0x3e],
    [0x7f, 0x09, 0x09, 0x09, 0x06], [0x3e, 0x41, 0x51, 0x21, 0x5e], [0x7f, 0x09, 0x19, 0x29, 0x46],
    [0x46, 0x49, 0x49, 0x49, 0x31], [0x01, 0x01, 0x7f, 0x01, 0x01], [0x3f, 0x40, 0x40, 0x40, 0x3f],
    [0x1f, 0x20, 0x40, 0x20, 0x1f], [0x3f, 0x40, 0x38, 0x40, 0x3f], [0x63, 0x14, 0x08, 0x14, 0x63],
    [0x07, 0x08, 0x70, 0x08, 0x07], [0x61, 0x51, 0x49, 0x45, 0x43], [0x00, 0x7f, 0x41, 0x41, 0x00],
    [0x02, 0x04, 0x08, 0x10, 0x20], [0x00, 0x41, 0x41, 0x7f, 0x00], [0x04, 0x02, 0x01, 0x02, 0x04],
    [0x40, 0x40, 0x40, 0x40, 0x40], [0x00, 0x01, 0x02, 0x04, 0x00], [0x20, 0x54, 0x54, 0x54, 0x78],
    [0x7f, 0x48, 0x44, 0x44, 0x38], [0x38, 0x44, 0x44, 0x44, 0x20], [0x38, 0x44, 0x44, 0x48, 0x7f],
    [0x38, 0x54, 0x54, 0x54, 0x18], [0x08, 0x7e, 0x09, 0x01, 0x02], [0x0c, 0x52, 0x52, 0x52, 0x3e],
    [0x7f, 0x08, 0x04, 0x04, 0x78], [0x00, 0x44, 0x7d, 0x40, 0x00], [0x20, 0x40, 0x44, 0x3d, 0x00],
    [0x7f, 0x10, 0x28, 0x44, 0x00], [0x00, 0x41, 0x7f, 0x40, 0x00], [0x7c, 0x04, 0x18, 0x04, 0x78],
    [0x7c, 0x08, 0x04, 0x04, 0x78], [0x38, 0x44, 0x44, 0x44, 0x38], [0x7c, 0x14, 0x14, 0x14, 0x08],
    [0x08, 0x14, 0x14, 0x18, 0x7c], [0x7c, 0x08, 0x04, 0x04, 0x08], [0x48, 0x54, 0x54, 0x54, 0x20],
    [0x04, 0x3f, 0x44, 0x40, 0x20], [0x3c, 0x40, 0x40, 0x20, 0x7c], [0x1c, 0x20, 0x40, 0x20, 0x1c],
    [0x3c, 0x40, 0x30, 0x40, 0x3c], [0x44, 0x28, 0x10, 0x28, 0x44], [0x0c, 0x50, 0x50, 0x50, 0x3c],
    [0x44, 0x64, 0x54, 0x4c, 0x44], [0x00, 0x08, 0x36, 0x41, 0x00], [0x00, 0x00, 0x7f, 0x00, 0x00],
    [0x00, 0x41, 0x36, 0x08, 0x00], [0x08, 0x04, 0x08, 0x10, 0x08],
];

#[cfg(test)]
mod tests {
    use super::*;

    fn be32(b: &[u8]) -> u32 {
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    #[test]
    fn crc32_of_known_inputs() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(
            crc32(b"The quick brown fox jumps over the lazy dog"),
            0x414f_a339
        );
        // The CRC of an empty IEND chunk, as every PNG ends with it.
        assert_eq!(crc32(b"IEND"), 0xae42_6082);
    }

    #[test]
    fn adler32_of_known_inputs() {
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"a"), 0x0062_0062);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
        assert_eq!(adler32(b"123456789"), 0x091e_01de);
        // Long input: the modulo reductions keep it exact.
        let big = vec![0xffu8; 100_000];
        let (mut a, mut b) = (1u64, 0u64);
        for &x in &big {
            a = (a + u64::from(x)) % 65_521;
            b = (b + a) % 65_521;
        }
        assert_eq!(adler32(&big), ((b << 16) | a) as u32);
    }

    #[test]
    fn stored_blocks_split_at_64k_and_end_with_adler() {
        let data: Vec<u8> = (0..150_000u32).map(|i| (i % 251) as u8).collect();
        let z = zlib_stored(&data);
        assert_eq!(&z[..2], &[0x78, 0x01]);
        assert_eq!((0x78u32 * 256 + 0x01) % 31, 0);
        // Three blocks: 65535, 65535, 18930 bytes; only the last has BFINAL.
        let mut at = 2;
        let mut got = Vec::new();
        let mut finals = Vec::new();
        loop {
            let hdr = z[at];
            let len = u16::from_le_bytes([z[at + 1], z[at + 2]]);
            let nlen = u16::from_le_bytes([z[at + 3], z[at + 4]]);
            assert_eq!(len, !nlen);
            got.extend_from_slice(&z[at + 5..at + 5 + len as usize]);
            at += 5 + len as usize;
            finals.push(hdr);
            if hdr & 1 == 1 {
                break;
            }
        }
        assert_eq!(finals, vec![0, 0, 1]);
        assert_eq!(got, data);
        assert_eq!(be32(&z[at..]), adler32(&data));
        assert_eq!(z.len(), at + 4);
        // Empty input is one empty final block.
        assert_eq!(
            zlib_stored(&[]),
            vec![0x78, 0x01, 1, 0, 0, 0xff, 0xff, 0, 0, 0, 1]
        );
    }

    #[test]
    fn png_has_signature_and_chunks_with_correct_crcs() {
        let (w, h) = (3u32, 2u32);
        let px: Vec<u8> = (0..w * h * 3).map(|i| i as u8).collect();
        let png = encode(w, h, &px);
        assert_eq!(&png[..8], &SIGNATURE);
        let mut at = 8;
        let mut kinds = Vec::new();
        let mut idat = Vec::new();
        while at < png.len() {
            let len = be32(&png[at..]) as usize;
            let kind = &png[at + 4..at + 8];
            let data = &png[at + 8..at + 8 + len];
            let crc = be32(&png[at + 8 + len..]);
            let mut covered = kind.to_vec();
            covered.extend_from_slice(data);
            assert_eq!(
                crc,
                crc32(&covered),
                "CRC of {}",
                String::from_utf8_lossy(kind)
            );
            if kind == b"IHDR" {
                assert_eq!(data, &[0, 0, 0, 3, 0, 0, 0, 2, 8, 2, 0, 0, 0]);
            }
            if kind == b"IDAT" {
                idat.extend_from_slice(data);
            }
            kinds.push(String::from_utf8_lossy(kind).into_owned());
            at += 12 + len;
        }
        assert_eq!(at, png.len());
        assert_eq!(kinds, ["IHDR", "IDAT", "IEND"]);
        assert_eq!(
            &png[png.len() - 8..],
            &[b'I', b'E', b'N', b'D', 0xae, 0x42, 0x60, 0x82]
        );
        // The image data: one stored block of two filtered scanlines.
        let raw: Vec<u8> = [&[0u8][..], &px[..9], &[0u8][..], &px[9..]].concat();
        assert_eq!(idat, zlib_stored(&raw));
    }

    #[test]
    fn canvas_draws_and_clips() {
        let mut c = Canvas::new(10, 8, WHITE);
        c.line(0, 0, 9, 7, BLACK, 1, None);
        assert_eq!(c.get(0, 0), Some(BLACK));
        assert_eq!(c.get(9, 7), Some(BLACK));
        assert_eq!(c.get(9, 0), Some(WHITE));
        assert_eq!(c.get(10, 0), None);
        // Off-canvas drawing is clipped, also absurd coordinates.
        c.line(-5, -5, 50, 3, BLACK, 3, Some((2, 2)));
        c.line(i64::MIN / 4, 0, i64::MAX / 4, 0, BLACK, 1, None);
        c.text(8, 6, "Wide text", BLACK, 2);
        c.text_up(0, 100, "up", BLACK, 1);
        assert_eq!(c.to_png().len(), 8 + 25 + (12 + 2 + 5 + 8 * 31 + 4) + 12);
        // A glyph lands where asked: '|' is the middle column.
        let mut t = Canvas::new(6, 7, WHITE);
        assert_eq!(t.text(0, 0, "|", BLACK, 1), 6);
        assert!((0..7).all(|y| t.get(2, y) == Some(BLACK) && t.get(0, y) == Some(WHITE)));
        assert_eq!(text_width("ab", 2), 22);
    }
}
