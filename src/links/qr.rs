//! QR codes of short URLs: SVG from the `qrcode` crate's renderer, PNG drawn from its module
//! matrix and encoded with `png` (grayscale, 8-bit), both with the standard 4-module quiet zone.

use qrcode::{Color, EcLevel, QrCode};

/// Smallest and largest image side in pixels.
pub const MIN_SIZE: u32 = 64;
pub const MAX_SIZE: u32 = 2048;
pub const DEFAULT_SIZE: u32 = 256;
const QUIET_ZONE: usize = 4;

/// The image formats offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Svg,
    Png,
}

impl Format {
    pub fn parse(text: &str) -> Option<Format> {
        match text {
            "svg" => Some(Format::Svg),
            "png" => Some(Format::Png),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Svg => "image/svg+xml",
            Format::Png => "image/png",
        }
    }
}

/// The QR code of `text` as an image of about `size`×`size` pixels (at least one pixel per
/// module; never smaller than the code needs).
pub fn render(text: &str, format: Format, size: u32) -> Result<Vec<u8>, qrcode::types::QrError> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)?;
    Ok(match format {
        Format::Svg => code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(size, size)
            .build()
            .into_bytes(),
        Format::Png => png_of(&code, size),
    })
}

fn png_of(code: &QrCode, size: u32) -> Vec<u8> {
    let modules = code.width();
    let colors = code.to_colors();
    let side_modules = modules + 2 * QUIET_ZONE;
    let scale = (size as usize / side_modules).max(1);
    let side = side_modules * scale;
    let mut pixels = vec![255u8; side * side];
    for y in 0..modules {
        for x in 0..modules {
            if colors[y * modules + x] == Color::Dark {
                for dy in 0..scale {
                    let row = (y + QUIET_ZONE) * scale + dy;
                    let start = row * side + (x + QUIET_ZONE) * scale;
                    pixels[start..start + scale].fill(0);
                }
            }
        }
    }
    let mut out = Vec::with_capacity(side * side / 8 + 256);
    let side = u32::try_from(side).expect("bounded by MAX_SIZE");
    let mut encoder = png::Encoder::new(&mut out, side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().expect("writing to memory");
    writer
        .write_image_data(&pixels)
        .expect("pixel count matches the header");
    writer.finish().expect("writing to memory");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_and_png() {
        let svg = render("https://s.example/abc123", Format::Svg, 256).unwrap();
        let svg = String::from_utf8(svg).unwrap();
        assert!(svg.contains("<svg") && svg.contains("</svg>"));
        let png = render("https://s.example/abc123", Format::Png, 256).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let decoder = png::Decoder::new(std::io::Cursor::new(&png));
        let reader = decoder.read_info().unwrap();
        let info = reader.info();
        assert_eq!(info.width, info.height);
        assert!(info.width <= 256 && info.width >= 200, "{}", info.width);
    }
}
