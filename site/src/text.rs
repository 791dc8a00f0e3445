//! The shop's words: product names, category names, filler text, and the one mixing
//! function every draw goes through. No random number crate: the same seed gives the same
//! shop with any version of any dependency, on every machine.

use std::fmt::Write as _;

pub(crate) const ADJECTIVES: [&str; 16] = [
    "Sturdy", "Gentle", "Bright", "Compact", "Rustic", "Polished", "Quiet", "Nimble", "Hardy",
    "Elegant", "Vintage", "Modern", "Cosy", "Bold", "Subtle", "Handy",
];
pub(crate) const MATERIALS: [&str; 10] = [
    "Oak", "Copper", "Linen", "Walnut", "Ceramic", "Bamboo", "Steel", "Wool", "Glass", "Cork",
];
/// One noun holds an `&`, so titles exercise entity decoding.
pub(crate) const NOUNS: [&str; 12] = [
    "Teapot",
    "Lantern",
    "Notebook",
    "Stool",
    "Planter",
    "Salt & Pepper Mill",
    "Blanket",
    "Clock",
    "Toolbox",
    "Bookend",
    "Kettle",
    "Basket",
];
const CATEGORY_NAMES: [&str; 8] = [
    "Kitchen", "Garden", "Office", "Outdoor", "Lighting", "Storage", "Textiles", "Tools",
];
const REVIEWERS: [&str; 12] = [
    "Ana", "Bertrand", "Chiara", "Dmitri", "Farah", "Gustav", "Hiroko", "Idris", "Kofi", "Leila",
    "Priya", "Rosa",
];
const FILLER: [&str; 24] = [
    "crafted",
    "with",
    "care",
    "for",
    "everyday",
    "use",
    "and",
    "built",
    "to",
    "last",
    "a",
    "classic",
    "piece",
    "that",
    "fits",
    "any",
    "home",
    "easy",
    "clean",
    "finish",
    "made",
    "from",
    "responsibly",
    "sourced",
];

/// SplitMix64's output function: tiny, fast and fully specified.
pub(crate) fn splitmix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One of `items`, chosen by `draw`.
pub(crate) fn pick<T: Copy>(items: &[T], draw: u64) -> T {
    items[(draw % items.len() as u64) as usize]
}

/// The slug of category `category`, as its listing paths use it: `kitchen`, …, `tools`,
/// then `kitchen-1`, … when a shop has more categories than names.
pub(crate) fn category_slug(category: usize) -> String {
    let name = CATEGORY_NAMES[category % CATEGORY_NAMES.len()].to_ascii_lowercase();
    match category / CATEGORY_NAMES.len() {
        0 => name,
        round => format!("{name}-{round}"),
    }
}

/// The name of category `category`, as pages show it.
pub(crate) fn category_title(category: usize) -> String {
    let name = CATEGORY_NAMES[category % CATEGORY_NAMES.len()];
    match category / CATEGORY_NAMES.len() {
        0 => name.to_owned(),
        round => format!("{name} {round}"),
    }
}

/// Lowercase ASCII words joined by dashes: `Salt & Pepper Mill` is `salt-pepper-mill`.
pub(crate) fn slugify(text: &str) -> String {
    let words: Vec<String> = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    words.join("-")
}

/// `count` paragraphs of filler text drawn from `seed`, about 400 bytes each.
pub(crate) fn paragraphs(seed: u64, count: usize) -> String {
    let mut text = String::new();
    let mut state = splitmix(seed);
    for _ in 0..count {
        text.push_str("<p>");
        for word in 0..60 {
            state = splitmix(state);
            if word > 0 {
                text.push(' ');
            }
            text.push_str(pick(&FILLER, state));
        }
        text.push_str(".</p>\n");
    }
    text
}

/// One customer review drawn from `seed`, about 550 bytes.
pub(crate) fn review(seed: u64) -> String {
    let state = splitmix(seed);
    let headline: Vec<&str> = (0..4)
        .map(|word| pick(&FILLER, splitmix(state ^ word)))
        .collect();
    let mut text = String::new();
    let _ = write!(
        text,
        "<article class=\"review\"><h3>{}</h3><p class=\"by\">{}, {}/5</p>\n{}</article>\n",
        headline.join(" "),
        pick(&REVIEWERS, state >> 8),
        1 + (state >> 16) % 5,
        paragraphs(state, 1),
    );
    text
}

/// HTML-escapes text for element content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
