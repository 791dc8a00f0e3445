//! How deep a CSS selector is, measured on its text before it is parsed: the parser recurses
//! into `:not()`, `:is()` and `:has()`, and matching one element walks every compound
//! selector of the chain, so both costs grow with this depth.
//!
//! The count is written by hand because it must run before the selector parser (to keep a
//! hostile selector away from it) and the CSS tokenizer of `cssparser` is not public. It
//! only has to be a fair upper bound, never a parse: strings, escapes and attribute
//! brackets are skipped so that their contents do not count.

/// The depth of `selector`: for each complex selector of the list, the number of its
/// compound selectors, where a compound holding a pseudo-class with arguments (`:not(…)`,
/// `:is(…)`, `:has(…)`) adds the depth of its deepest argument; the deepest of the list.
///
/// `h1` is 1, `div.product > span.price` is 2, `li:not(.sold) a` is 3, and `:not(:not(a))`
/// is 3. Unbalanced brackets are counted as if closed at the end.
pub(super) fn selector_depth(selector: &str) -> usize {
    let mut frames = vec![Frame::default()];
    let mut characters = selector.chars().peekable();
    while let Some(character) = characters.next() {
        let nested = frames.len() > 1;
        let frame = frames
            .last_mut()
            .expect("the outermost frame is never popped");
        match character {
            '\\' => {
                frame.open_compound();
                skip_escape(&mut characters);
            }
            '"' | '\'' => {
                frame.open_compound();
                skip_string(character, &mut characters);
            }
            '[' => {
                frame.open_compound();
                skip_attribute(&mut characters);
            }
            '(' => {
                frame.open_compound();
                frames.push(Frame::default());
            }
            ')' if nested => close_argument(&mut frames),
            ',' => frame.end_complex(),
            '>' | '+' | '~' => frame.close_compound(),
            character if character.is_whitespace() => frame.close_compound(),
            _ => frame.open_compound(),
        }
    }
    while frames.len() > 1 {
        close_argument(&mut frames);
    }
    frames.pop().expect("the outermost frame").finish()
}

/// Ends the innermost pseudo-class argument; its depth counts towards its compound.
fn close_argument(frames: &mut Vec<Frame>) {
    let argument = frames.pop().expect("an argument frame").finish();
    let parent = frames.last_mut().expect("the frame holding the argument");
    parent.compound_argument = parent.compound_argument.max(argument);
}

/// The count within one selector list: the whole selector, or one pseudo-class's argument.
#[derive(Debug, Default)]
struct Frame {
    /// Depth of the compounds closed so far in the current complex selector.
    complex: usize,
    /// Whether a compound selector is being read.
    compound_open: bool,
    /// Depth of the deepest argument of the compound being read.
    compound_argument: usize,
    /// Depth of the deepest complex selector finished in this list.
    deepest: usize,
}

impl Frame {
    fn open_compound(&mut self) {
        self.compound_open = true;
    }

    fn close_compound(&mut self) {
        if self.compound_open {
            self.complex += 1 + self.compound_argument;
            self.compound_open = false;
            self.compound_argument = 0;
        }
    }

    fn end_complex(&mut self) {
        self.close_compound();
        self.deepest = self.deepest.max(self.complex);
        self.complex = 0;
    }

    fn finish(mut self) -> usize {
        self.end_complex();
        self.deepest
    }
}

/// Skips what follows a backslash: up to six hex digits and one space, or one character.
fn skip_escape(characters: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    let mut hex_digits = 0;
    while hex_digits < 6 && characters.next_if(char::is_ascii_hexdigit).is_some() {
        hex_digits += 1;
    }
    if hex_digits == 0 {
        characters.next();
    } else {
        characters.next_if(|character| character.is_whitespace());
    }
}

/// Skips a quoted string up to its closing quote.
fn skip_string(quote: char, characters: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(character) = characters.next() {
        match character {
            '\\' => skip_escape(characters),
            character if character == quote => return,
            _ => {}
        }
    }
}

/// Skips an attribute selector up to its closing bracket.
fn skip_attribute(characters: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(character) = characters.next() {
        match character {
            '\\' => skip_escape(characters),
            '"' | '\'' => skip_string(character, characters),
            ']' => return,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::selector_depth;

    #[test]
    fn counts_compound_selectors_along_a_chain() {
        assert_eq!(selector_depth("h1"), 1);
        assert_eq!(selector_depth("div.product > span.price"), 2);
        assert_eq!(selector_depth("  main   article p a[href] "), 4);
        assert_eq!(selector_depth("a+b~c>d e"), 5);
    }

    #[test]
    fn takes_the_deepest_of_a_list() {
        assert_eq!(selector_depth("h1, main article h2, h3"), 3);
    }

    #[test]
    fn adds_the_deepest_argument_of_a_pseudo_class() {
        assert_eq!(selector_depth("li:not(.sold) a"), 3);
        assert_eq!(selector_depth(":not(:not(a))"), 3);
        assert_eq!(selector_depth("div:has(> p span, b)"), 3);
        let nested = format!("{}a{}", ":is(".repeat(50), ")".repeat(50));
        assert_eq!(selector_depth(&nested), 51);
    }

    #[test]
    fn does_not_count_inside_strings_attributes_or_escapes() {
        assert_eq!(selector_depth("a[title='x > y (z']"), 1);
        assert_eq!(selector_depth(r#"a[data-x="] b"]"#), 1);
        assert_eq!(selector_depth(r"#a\ b"), 1);
        assert_eq!(selector_depth(r".\31 23"), 1);
    }

    #[test]
    fn survives_unbalanced_text() {
        assert_eq!(selector_depth(":not(:not(a"), 3);
        assert_eq!(selector_depth("a))) b"), 2);
        assert_eq!(selector_depth("a[unclosed b c"), 1);
        assert_eq!(selector_depth(""), 0);
    }
}
