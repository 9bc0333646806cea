//! The machinery that lets each configuration key be declared once (in `settings.rs`): from one
//! line per key, with its doc, raw type, default and rule, [`config_sections!`] writes the raw
//! section (serde, defaults), the typed section, the conversion between them, and the
//! documentation from which `config.toml` is printed ([`template`]).
//!
//! It must not hold any key itself: keys, defaults and docs live in `settings.rs` only.

/// A key as `config.toml` documents it.
pub struct KeyDoc {
    pub name: &'static str,
    /// The doc comment's lines.
    pub doc: &'static [&'static str],
    pub default: toml::Value,
    /// What the key accepts (from its rule); empty when the doc says it.
    pub accepts: String,
}

/// A section as `config.toml` documents it.
pub struct SectionDoc {
    pub name: &'static str,
    pub keys: Vec<KeyDoc>,
}

/// Declares the configuration. Each section reads
///
/// ```text
/// [name] RawName => TypedName {
///     /// Doc, printed into config.toml.
///     key: RawType = default, rule;                        // typed field `key: RawType`
///     key_ms: u64 = 500, millis() => field: Duration;      // typed field with its own name
/// }
/// ```
///
/// and yields `RawConfig` and `Config` with one field per section, `Config::from_raw`, and
/// `documented_sections()`.
macro_rules! config_sections {
    (
        $(
            [$section:ident] $Raw:ident => $Typed:ident { $($body:tt)* }
        )*
    ) => {
        /// The configuration as written: `config.toml` one to one, with the built-in defaults.
        #[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct RawConfig {
            $( pub $section: $Raw, )*
        }

        /// The validated configuration.
        #[derive(Debug, Clone)]
        pub struct Config {
            $( pub $section: $Typed, )*
        }

        impl Config {
            /// Validates raw values into typed ones. Every error names the key and what it accepts.
            pub fn from_raw(raw: RawConfig) -> Result<Config, ConfigError> {
                let config = Config {
                    $( $section: $Typed::from_raw(raw.$section)?, )*
                };
                config.check_together()?;
                Ok(config)
            }
        }

        /// Every section and key with its doc and default, in declaration order.
        pub fn documented_sections() -> Vec<$crate::config::declare::SectionDoc> {
            vec![
                $( $crate::config::declare::SectionDoc {
                    name: stringify!($section),
                    keys: $Typed::documented_keys(),
                }, )*
            ]
        }

        $( config_section! { [$section] $Raw => $Typed { $($body)* } } )*
    };
}

/// One section of [`config_sections!`].
macro_rules! config_section {
    (
        [$section:ident] $Raw:ident => $Typed:ident {
            $(
                $(#[doc = $doc:literal])*
                $key:ident : $raw_ty:ty = $default:expr, $rule:expr
                    $(=> $field:ident : $ty:ty)? ;
            )*
        }
    ) => {
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $Raw {
            $( $(#[doc = $doc])* pub $key: $raw_ty, )*
        }

        impl Default for $Raw {
            fn default() -> Self {
                $Raw { $( $key: $default, )* }
            }
        }

        typed_section! {
            @struct $Typed [] $( [$(#[doc = $doc])*] $key : $raw_ty $(=> $field : $ty)? ; )*
        }

        impl $Typed {
            fn from_raw(raw: $Raw) -> Result<$Typed, ConfigError> {
                typed_section! { @init $Typed raw $section [] $( $key, $rule $(=> $field)? ; )* }
            }

            fn documented_keys() -> Vec<$crate::config::declare::KeyDoc> {
                let defaults = $Raw::default();
                vec![
                    $( $crate::config::declare::KeyDoc {
                        name: stringify!($key),
                        doc: &[$($doc),*],
                        default: toml::Value::try_from(&defaults.$key)
                            .expect("every default is a TOML value"),
                        accepts: $crate::config::rules::Rule::<$raw_ty>::accepts(&$rule),
                    }, )*
                ]
            }
        }
    };
}

/// The typed struct and its initializer: a key without `=> field: Type` keeps its name and type.
macro_rules! typed_section {
    (@struct $Typed:ident [$($fields:tt)*]) => {
        #[derive(Debug, Clone)]
        pub struct $Typed { $($fields)* }
    };
    (@struct $Typed:ident [$($fields:tt)*]
        [$($attr:tt)*] $key:ident : $raw_ty:ty => $field:ident : $ty:ty ; $($rest:tt)*) => {
        typed_section! { @struct $Typed [$($fields)* $($attr)* pub $field: $ty,] $($rest)* }
    };
    (@struct $Typed:ident [$($fields:tt)*]
        [$($attr:tt)*] $key:ident : $raw_ty:ty ; $($rest:tt)*) => {
        typed_section! { @struct $Typed [$($fields)* $($attr)* pub $key: $raw_ty,] $($rest)* }
    };
    (@init $Typed:ident $raw:ident $section:ident [$($inits:tt)*]) => {
        Ok($Typed { $($inits)* })
    };
    (@init $Typed:ident $raw:ident $section:ident [$($inits:tt)*]
        $key:ident, $rule:expr => $field:ident ; $($rest:tt)*) => {
        typed_section! { @init $Typed $raw $section [$($inits)*
            $field: $crate::config::rules::Rule::apply(
                &$rule, concat!(stringify!($section), ".", stringify!($key)), $raw.$key)?,
        ] $($rest)* }
    };
    (@init $Typed:ident $raw:ident $section:ident [$($inits:tt)*]
        $key:ident, $rule:expr ; $($rest:tt)*) => {
        typed_section! { @init $Typed $raw $section [$($inits)*
            $key: $crate::config::rules::Rule::apply(
                &$rule, concat!(stringify!($section), ".", stringify!($key)), $raw.$key)?,
        ] $($rest)* }
    };
}

/// `config.toml` as shipped: every key at its default, with its doc and what it accepts.
pub fn template(header: &str, sections: &[SectionDoc]) -> String {
    const WIDTH: usize = 100;
    let mut out = String::new();
    for line in header.lines() {
        push_comment(&mut out, line);
    }
    for section in sections {
        out.push_str(&format!("\n[{}]\n", section.name));
        for key in &section.keys {
            let mut lines: Vec<String> = key.doc.iter().map(|l| l.trim().to_owned()).collect();
            if !key.accepts.is_empty() {
                let accepts = format!("({})", key.accepts);
                match lines.last_mut() {
                    Some(last) if last.chars().count() + 3 + accepts.len() <= WIDTH => {
                        last.push(' ');
                        last.push_str(&accepts);
                    }
                    _ => lines.push(accepts),
                }
            }
            for line in &lines {
                push_comment(&mut out, line);
            }
            out.push_str(&format!("{} = {}\n", key.name, key.default));
        }
    }
    out
}

fn push_comment(out: &mut String, line: &str) {
    if line.is_empty() {
        out.push_str("#\n");
    } else {
        out.push_str("# ");
        out.push_str(line);
        out.push('\n');
    }
}
