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
    /// `http`, or `drives.quark` for a per-drive section.
    pub name: String,
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
/// and a last one, `per_drive [name] RawName => TypedName { … }`, declares the keys of one
/// section per drive of the registry (`[drives.quark]`, `[drives.baidu]`, …), each with the same
/// keys and defaults; a drive's section left out of the file has every default.
///
/// It yields `RawConfig` and `Config` with one field per section, `Config::from_raw`, and
/// `documented_sections()`.
macro_rules! config_sections {
    (
        $(
            [$section:ident] $Raw:ident => $Typed:ident { $($body:tt)* }
        )*
        per_drive [$drives:ident] $DriveRaw:ident => $DriveTyped:ident { $($drive_body:tt)* }
    ) => {
        /// The configuration as written: `config.toml` one to one, with the built-in defaults.
        #[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct RawConfig {
            $( pub $section: $Raw, )*
            pub $drives: $crate::config::declare::PerDriveRaw<$DriveRaw>,
        }

        /// The validated configuration.
        #[derive(Debug, Clone)]
        pub struct Config {
            $( pub $section: $Typed, )*
            pub $drives: $crate::config::declare::PerDrive<$DriveTyped>,
        }

        impl Config {
            /// Validates raw values into typed ones. Every error names the key and what it accepts.
            pub fn from_raw(raw: RawConfig) -> Result<Config, ConfigError> {
                let config = Config {
                    $( $section: $Typed::from_raw(raw.$section, stringify!($section))?, )*
                    $drives: raw.$drives.validate(stringify!($drives), $DriveTyped::from_raw)?,
                };
                config.check_together()?;
                Ok(config)
            }
        }

        /// Every section and key with its doc and default, in declaration order.
        pub fn documented_sections() -> Vec<$crate::config::declare::SectionDoc> {
            let mut sections = vec![
                $( $crate::config::declare::SectionDoc {
                    name: stringify!($section).to_owned(),
                    keys: $Typed::documented_keys(),
                }, )*
            ];
            for drive in $crate::drive::Provider::ALL {
                sections.push($crate::config::declare::SectionDoc {
                    name: format!("{}.{}", stringify!($drives), drive.as_str()),
                    keys: $DriveTyped::documented_keys(),
                });
            }
            sections
        }

        $( config_section! { [$section] $Raw => $Typed { $($body)* } } )*
        config_section! { [$drives] $DriveRaw => $DriveTyped { $($drive_body)* } }
    };
}

/// The per-drive sections as written: a drive the file does not name has the defaults.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct PerDriveRaw<Raw>(std::collections::BTreeMap<crate::drive::Provider, Raw>);

impl<Raw: Default> Default for PerDriveRaw<Raw> {
    fn default() -> Self {
        PerDriveRaw(
            crate::drive::Provider::ALL
                .into_iter()
                .map(|drive| (drive, Raw::default()))
                .collect(),
        )
    }
}

impl<Raw: Default> PerDriveRaw<Raw> {
    /// Validates each drive's section (`section.drive` in messages); a missing one has defaults.
    pub fn validate<Typed>(
        mut self,
        section: &str,
        from_raw: impl Fn(Raw, &str) -> Result<Typed, super::ConfigError>,
    ) -> Result<PerDrive<Typed>, super::ConfigError> {
        let all = crate::drive::Provider::ALL
            .into_iter()
            .map(|drive| {
                let raw = self.0.remove(&drive).unwrap_or_default();
                from_raw(raw, &format!("{section}.{}", drive.as_str()))
            })
            .collect::<Result<Vec<Typed>, _>>()?;
        Ok(PerDrive(all.into_boxed_slice()))
    }
}

/// One validated value per drive of the registry.
#[derive(Debug, Clone)]
pub struct PerDrive<T>(Box<[T]>);

impl<T> PerDrive<T> {
    /// `drive`'s value.
    pub fn of(&self, drive: crate::drive::Provider) -> &T {
        &self.0[drive.index()]
    }
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
            /// Validates the section named `section` (in messages: `section.key`).
            fn from_raw(raw: $Raw, section: &str) -> Result<$Typed, ConfigError> {
                typed_section! { @init $Typed raw section [] $( $key, $rule $(=> $field)? ; )* }
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
                &$rule, &format!("{}.{}", $section, stringify!($key)), $raw.$key)?,
        ] $($rest)* }
    };
    (@init $Typed:ident $raw:ident $section:ident [$($inits:tt)*]
        $key:ident, $rule:expr ; $($rest:tt)*) => {
        typed_section! { @init $Typed $raw $section [$($inits)*
            $key: $crate::config::rules::Rule::apply(
                &$rule, &format!("{}.{}", $section, stringify!($key)), $raw.$key)?,
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
    let mut documented_family: Option<&str> = None;
    for section in sections {
        out.push_str(&format!("\n[{}]\n", section.name));
        // Per-drive sections repeat one set of keys: their docs are printed once.
        if let Some((family, _)) = section.name.split_once('.') {
            if let Some(first) =
                documented_family.filter(|f| f.split_once('.').map(|(p, _)| p) == Some(family))
            {
                out.push_str(&format!("# (the keys as documented under [{first}])\n"));
                for key in &section.keys {
                    out.push_str(&format!("{} = {}\n", key.name, key.default));
                }
                continue;
            }
            documented_family = Some(&section.name);
        }
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
