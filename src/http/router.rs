//! A static route table matched without allocating.
//!
//! Routes are `(method, pattern)` pairs such as `GET /jobs/{id}/events`. At build time patterns are
//! split into literal and parameter segments, grouped by segment count, and ordered most specific
//! first (a literal beats a parameter at the same position, so `/health` wins over `/{code}`).
//! Matching a request first finds the path (the most specific pattern that fits), then the method:
//! a known path with another method is a 405 with a precomputed `Allow` value, `HEAD` falls back
//! to `GET`, and `OPTIONS` is answered for every known path. Parameters are borrowed from the
//! request path into a fixed-size array.

use http::{HeaderValue, Method};

/// The most parameters one pattern may have.
pub const MAX_PARAMS: usize = 4;
/// The most segments a pattern may have; longer paths never match.
pub const MAX_SEGMENTS: usize = 8;

/// One entry of a route table.
#[derive(Debug, Clone)]
pub struct RouteDef<H> {
    pub method: Method,
    pub pattern: &'static str,
    pub handler: H,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment {
    Literal(&'static str),
    Param(&'static str),
}

/// All routes that share one pattern.
#[derive(Debug)]
struct PathEntry<H> {
    pattern: &'static str,
    segments: Vec<Segment>,
    methods: Vec<(Method, H)>,
    allow: HeaderValue,
}

/// Path parameters captured by a match, borrowed from the request path.
#[derive(Debug, Clone, Copy)]
pub struct Params<'p> {
    len: usize,
    items: [(&'static str, &'p str); MAX_PARAMS],
}

impl<'p> Params<'p> {
    const EMPTY: Params<'static> = Params {
        len: 0,
        items: [("", ""); MAX_PARAMS],
    };

    /// The value of parameter `name`, if the pattern has it.
    pub fn get(&self, name: &str) -> Option<&'p str> {
        self.items[..self.len]
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    /// All captured `(name, value)` pairs, in pattern order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &'p str)> + '_ {
        self.items[..self.len].iter().copied()
    }
}

/// The outcome of matching a request.
#[derive(Debug)]
pub enum Match<'r, 'p, H> {
    /// A route for this path and method.
    Found {
        handler: &'r H,
        params: Params<'p>,
        pattern: &'static str,
    },
    /// `OPTIONS` on a known path that has no explicit `OPTIONS` route.
    Options {
        allow: &'r HeaderValue,
        pattern: &'static str,
        handlers: &'r [(Method, H)],
    },
    /// A known path, but not with this method.
    MethodNotAllowed {
        allow: &'r HeaderValue,
        pattern: &'static str,
        handlers: &'r [(Method, H)],
    },
    NotFound,
}

/// A route table error found at build time.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("pattern {0:?} must start with '/'")]
    NoLeadingSlash(&'static str),
    #[error("pattern {0:?} has more than {MAX_SEGMENTS} segments or {MAX_PARAMS} parameters")]
    TooLong(&'static str),
    #[error("pattern {0:?} has a malformed segment")]
    BadSegment(&'static str),
    #[error("patterns {0:?} and {1:?} are the same path with different parameter names")]
    ConflictingParams(&'static str, &'static str),
    #[error("route {0} {1:?} is defined twice")]
    Duplicate(Method, &'static str),
}

/// The compiled route table.
#[derive(Debug)]
pub struct Router<H> {
    entries: Vec<PathEntry<H>>,
    /// `by_len[n]`: indexes of entries with `n` segments, most specific first.
    by_len: [Vec<usize>; MAX_SEGMENTS + 1],
}

impl<H> Router<H> {
    /// Compiles a route table.
    pub fn new(routes: impl IntoIterator<Item = RouteDef<H>>) -> Result<Router<H>, RouterError> {
        let mut entries: Vec<PathEntry<H>> = Vec::new();
        for route in routes {
            let segments = parse_pattern(route.pattern)?;
            let entry = match entries
                .iter_mut()
                .find(|e| same_shape(&e.segments, &segments))
            {
                Some(entry) if entry.segments != segments => {
                    return Err(RouterError::ConflictingParams(entry.pattern, route.pattern));
                }
                Some(entry) => entry,
                None => {
                    entries.push(PathEntry {
                        pattern: route.pattern,
                        segments,
                        methods: Vec::new(),
                        allow: HeaderValue::from_static(""),
                    });
                    entries.last_mut().expect("just pushed")
                }
            };
            if entry.methods.iter().any(|(m, _)| *m == route.method) {
                return Err(RouterError::Duplicate(route.method, route.pattern));
            }
            entry.methods.push((route.method, route.handler));
        }
        for entry in &mut entries {
            entry.allow = allow_header(&entry.methods);
        }
        entries.sort_by_key(|entry| specificity(&entry.segments));
        let mut by_len: [Vec<usize>; MAX_SEGMENTS + 1] = Default::default();
        for (index, entry) in entries.iter().enumerate() {
            by_len[entry.segments.len()].push(index);
        }
        Ok(Router { entries, by_len })
    }

    /// Matches a request's method and path.
    pub fn find<'r, 'p>(&'r self, method: &Method, path: &'p str) -> Match<'r, 'p, H> {
        let Some(rest) = path.strip_prefix('/') else {
            return Match::NotFound;
        };
        // Split the path once into a stack array; candidates compare against it.
        let mut parts = [""; MAX_SEGMENTS];
        let mut count = 0;
        for part in rest.split('/') {
            if count == MAX_SEGMENTS {
                return Match::NotFound;
            }
            parts[count] = part;
            count += 1;
        }
        let parts = &parts[..count];
        for &index in &self.by_len[count] {
            let entry = &self.entries[index];
            let Some(params) = match_segments(&entry.segments, parts) else {
                continue;
            };
            let exact = entry.methods.iter().find(|(m, _)| m == method);
            let head_as_get = || {
                (method == Method::HEAD)
                    .then(|| entry.methods.iter().find(|(m, _)| *m == Method::GET))
                    .flatten()
            };
            return match exact.or_else(head_as_get) {
                Some((_, handler)) => Match::Found {
                    handler,
                    params,
                    pattern: entry.pattern,
                },
                None if method == Method::OPTIONS => Match::Options {
                    allow: &entry.allow,
                    pattern: entry.pattern,
                    handlers: &entry.methods,
                },
                None => Match::MethodNotAllowed {
                    allow: &entry.allow,
                    pattern: entry.pattern,
                    handlers: &entry.methods,
                },
            };
        }
        Match::NotFound
    }

    /// Every `(method, pattern)` in the table, for docs and tests.
    pub fn routes(&self) -> impl Iterator<Item = (&Method, &'static str, &H)> + '_ {
        self.entries
            .iter()
            .flat_map(|e| e.methods.iter().map(move |(m, h)| (m, e.pattern, h)))
    }
}

fn match_segments<'p>(segments: &[Segment], parts: &[&'p str]) -> Option<Params<'p>> {
    let mut params = Params::EMPTY;
    for (segment, &part) in segments.iter().zip(parts) {
        match *segment {
            Segment::Literal(literal) => {
                if literal != part {
                    return None;
                }
            }
            Segment::Param(name) => {
                if part.is_empty() {
                    return None;
                }
                params.items[params.len] = (name, part);
                params.len += 1;
            }
        }
    }
    Some(params)
}

fn parse_pattern(pattern: &'static str) -> Result<Vec<Segment>, RouterError> {
    let rest = pattern
        .strip_prefix('/')
        .ok_or(RouterError::NoLeadingSlash(pattern))?;
    let mut segments = Vec::new();
    for part in rest.split('/') {
        let segment = match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some(name) if !name.is_empty() && !name.contains(['{', '}']) => Segment::Param(name),
            Some(_) => return Err(RouterError::BadSegment(pattern)),
            None if part.contains(['{', '}']) => return Err(RouterError::BadSegment(pattern)),
            None => Segment::Literal(part),
        };
        segments.push(segment);
    }
    let params = segments
        .iter()
        .filter(|s| matches!(s, Segment::Param(_)))
        .count();
    if segments.len() > MAX_SEGMENTS || params > MAX_PARAMS {
        return Err(RouterError::TooLong(pattern));
    }
    Ok(segments)
}

/// Whether two patterns match the same paths (parameter names aside).
fn same_shape(a: &[Segment], b: &[Segment]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|pair| match pair {
            (Segment::Literal(x), Segment::Literal(y)) => x == y,
            (Segment::Param(_), Segment::Param(_)) => true,
            _ => false,
        })
}

/// Sort key: literals (0) before parameters (1), position by position.
fn specificity(segments: &[Segment]) -> Vec<u8> {
    segments
        .iter()
        .map(|s| u8::from(matches!(s, Segment::Param(_))))
        .collect()
}

fn allow_header<H>(methods: &[(Method, H)]) -> HeaderValue {
    let mut names: Vec<&str> = methods.iter().map(|(m, _)| m.as_str()).collect();
    if names.contains(&"GET") && !names.contains(&"HEAD") {
        names.push("HEAD");
    }
    if !names.contains(&"OPTIONS") {
        names.push("OPTIONS");
    }
    HeaderValue::from_str(&names.join(", ")).expect("method names are valid header text")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router<u32> {
        let routes = [
            (Method::GET, "/", 0),
            (Method::GET, "/health", 1),
            (Method::GET, "/jobs/{id}", 2),
            (Method::DELETE, "/jobs/{id}", 3),
            (Method::GET, "/jobs/{id}/events", 4),
            (Method::GET, "/{code}", 5),
            (Method::POST, "/{code}", 6),
            (Method::POST, "/jobs", 7),
            (Method::GET, "/a/{x}/b/{y}", 8),
        ];
        Router::new(
            routes
                .into_iter()
                .map(|(method, pattern, handler)| RouteDef {
                    method,
                    pattern,
                    handler,
                }),
        )
        .unwrap()
    }

    fn found(r: &Router<u32>, method: Method, path: &str) -> Option<u32> {
        match r.find(&method, path) {
            Match::Found { handler, .. } => Some(*handler),
            _ => None,
        }
    }

    #[test]
    fn literals_win_over_parameters() {
        let r = router();
        assert_eq!(found(&r, Method::GET, "/health"), Some(1));
        assert_eq!(found(&r, Method::GET, "/abc123"), Some(5));
        assert_eq!(found(&r, Method::GET, "/"), Some(0));
        assert_eq!(found(&r, Method::POST, "/jobs"), Some(7));
    }

    #[test]
    fn params_are_captured() {
        let r = router();
        let Match::Found {
            params, pattern, ..
        } = r.find(&Method::GET, "/a/1/b/two")
        else {
            panic!("no match");
        };
        assert_eq!(pattern, "/a/{x}/b/{y}");
        assert_eq!(params.get("x"), Some("1"));
        assert_eq!(params.get("y"), Some("two"));
        assert_eq!(params.get("z"), None);
    }

    #[test]
    fn wrong_method_on_reserved_path_is_405_not_a_code() {
        let r = router();
        // POST /{code} exists, but /health is a literal path: its methods decide.
        let Match::MethodNotAllowed { allow, .. } = r.find(&Method::POST, "/health") else {
            panic!("expected 405");
        };
        assert_eq!(allow, "GET, HEAD, OPTIONS");
        let Match::MethodNotAllowed { allow, .. } = r.find(&Method::PUT, "/jobs/9") else {
            panic!("expected 405");
        };
        assert_eq!(allow, "GET, DELETE, HEAD, OPTIONS");
    }

    #[test]
    fn head_falls_back_to_get_and_options_is_known() {
        let r = router();
        assert_eq!(found(&r, Method::HEAD, "/jobs/1/events"), Some(4));
        assert!(matches!(
            r.find(&Method::OPTIONS, "/jobs"),
            Match::Options { .. }
        ));
    }

    #[test]
    fn unknown_paths_and_empty_params_are_not_found() {
        let r = router();
        for path in [
            "/jobs/",
            "/nope/x/y",
            "relative",
            "/a/1/b/",
            "/x/y/z/w/v/u/t/s/r/q",
        ] {
            assert!(
                matches!(r.find(&Method::GET, path), Match::NotFound),
                "{path}"
            );
        }
    }

    #[test]
    fn bad_tables_are_refused() {
        let bad = |pattern| {
            Router::new([RouteDef {
                method: Method::GET,
                pattern,
                handler: 0,
            }])
            .is_err()
        };
        assert!(bad("nope"));
        assert!(bad("/a{b}"));
        assert!(bad("/{}"));
        let dup = Router::new([
            RouteDef {
                method: Method::GET,
                pattern: "/x/{a}",
                handler: 0,
            },
            RouteDef {
                method: Method::GET,
                pattern: "/x/{b}",
                handler: 1,
            },
        ]);
        assert!(dup.is_err());
    }
}
