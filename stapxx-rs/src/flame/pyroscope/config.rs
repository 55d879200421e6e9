//! What a push goes to and how: the server's URL, the application name and
//! its tags, the bounds of the buffer, the retry schedule; and the checks
//! of the command line's `--pyroscope*`/`--push-*` values.
//!
//! Names follow what Pyroscope's key parser accepts (its `flameql`
//! package): an application name of letters, digits and `_ . - /`, tag
//! names of letters, digits, `_` and `.` (`__name__` is its own), and tag
//! values that do not contain the characters that end a value in
//! `APP{k=v,...}` (`,` `}`) or start a new part (`{` `=`). Checking here
//! turns what the server would refuse, once per profile for the whole run,
//! into one error before anything runs.

use crate::cli::Cli;
use std::path::Path;
use std::time::Duration;

/// `--push-buffer` default, in MB (MiB).
pub const DEFAULT_BUFFER_MB: u64 = 64;
/// `--push-max-age` default, in seconds.
pub const DEFAULT_MAX_AGE_S: u64 = 300;
/// The application name when neither `--pyroscope-app` nor a traced
/// executable gives one.
pub const FALLBACK_APP: &str = "stapxx-rs";
/// `spyName`: Pyroscope shows it as the profile's source. Not one of the
/// names it rewrites frames for (`pyspy`, `rbspy`, `scripting` get their
/// function names replaced by `file:line - name`).
pub const SPY_NAME: &str = "stapxx-rs";

/// Where and how profiles are pushed.
#[derive(Debug, Clone)]
pub struct PushConfig {
    /// The server's base URL as given (no trailing `/`); `/ingest` is
    /// appended.
    pub url: url::Url,
    /// The application name (`name`'s part before the braces).
    pub app: String,
    /// `k=v` tags, in the order given.
    pub tags: Vec<(String, String)>,
    /// Bound on the bytes of profiles waiting (and the one being sent).
    pub buffer_bytes: u64,
    /// A profile not delivered this long after it was submitted is dropped.
    pub max_age: Duration,
    /// `sampleRate`: the sampling frequency behind the profile's counts.
    pub sample_rate_hz: u64,
    /// `spyName`.
    pub spy_name: String,
    /// Bound on one request, connection to response.
    pub request_timeout: Duration,
    /// The wait after the first failure; doubled after each further
    /// failure in a row, up to [`PushConfig::backoff_max`].
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

impl PushConfig {
    /// A configuration with the defaults for everything but the server and
    /// the application, both checked.
    pub fn new(url: &str, app: &str) -> Result<PushConfig, String> {
        check_app(app)?;
        Ok(PushConfig {
            url: parse_url(url)?,
            app: app.to_string(),
            tags: Vec::new(),
            buffer_bytes: DEFAULT_BUFFER_MB << 20,
            max_age: Duration::from_secs(DEFAULT_MAX_AGE_S),
            sample_rate_hz: 100,
            spy_name: SPY_NAME.to_string(),
            request_timeout: Duration::from_secs(10),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
        })
    }

    /// `APP{k=v,...}`: the `name` parameter before URL encoding. For pprof
    /// Pyroscope takes it as a prefix and appends the profile type.
    pub fn name(&self) -> String {
        let tags: Vec<String> = self.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{}{{{}}}", self.app, tags.join(","))
    }

    /// `URL/ingest` with the query of one profile (`from`/`until` in unix
    /// seconds), every value URL-encoded.
    pub fn ingest_url(&self, from: u64, until: u64) -> url::Url {
        let mut u = self.ingest_base();
        u.query_pairs_mut()
            .append_pair("name", &self.name())
            .append_pair("from", &from.to_string())
            .append_pair("until", &until.to_string())
            .append_pair("format", "pprof")
            .append_pair("sampleRate", &self.sample_rate_hz.to_string())
            .append_pair("spyName", &self.spy_name);
        u
    }

    /// `URL/ingest` for messages: without a password, if the URL has one.
    pub fn shown_url(&self) -> String {
        let mut u = self.ingest_base();
        if u.password().is_some() {
            let _ = u.set_password(Some("***"));
        }
        u.to_string()
    }

    fn ingest_base(&self) -> url::Url {
        let mut u = self.url.clone();
        let path = format!("{}/ingest", u.path().trim_end_matches('/'));
        u.set_path(&path);
        u
    }
}

/// The server URL: `http://` or `https://` with a host, no query or
/// fragment (the query is ours). A user and password in it are sent as
/// basic authentication.
pub fn parse_url(s: &str) -> Result<url::Url, String> {
    let bad = |why: &str| format!("bad --pyroscope URL '{s}': {why}");
    let u = url::Url::parse(s).map_err(|e| bad(&e.to_string()))?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err(bad(&format!(
            "the scheme must be http or https, not '{}'",
            u.scheme()
        )));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(bad(
            "it must not have a query or fragment (the push adds /ingest and its own query)",
        ));
    }
    Ok(u)
}

/// An application name Pyroscope takes.
pub fn check_app(app: &str) -> Result<(), String> {
    if app.is_empty() {
        return Err("bad --pyroscope-app '': the application name is empty".into());
    }
    match app.chars().find(|&c| !app_char(c)) {
        Some(c) => Err(format!(
            "bad --pyroscope-app '{app}': {c:?} is not allowed (letters, digits, '_', '.', '-', '/')"
        )),
        None => Ok(()),
    }
}

fn app_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')
}

/// One `--pyroscope-tag K=V`.
pub fn parse_tag(s: &str) -> Result<(String, String), String> {
    let bad = |why: String| format!("bad --pyroscope-tag '{s}': {why}");
    let Some((k, v)) = s.split_once('=') else {
        return Err(bad("expected KEY=VALUE".into()));
    };
    if k.is_empty() {
        return Err(bad("the key is empty".into()));
    }
    if let Some(c) = k
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
    {
        return Err(bad(format!(
            "{c:?} is not allowed in a key (letters, digits, '_', '.')"
        )));
    }
    if k == "__name__" {
        return Err(bad(
            "__name__ is Pyroscope's own (the application name)".into()
        ));
    }
    if v.is_empty() {
        return Err(bad("the value is empty".into()));
    }
    if let Some(c) = v
        .chars()
        .find(|&c| matches!(c, ',' | '{' | '}' | '=') || c.is_whitespace() || c.is_control())
    {
        return Err(bad(format!(
            "{c:?} is not allowed in a value (no ',', '{{', '}}', '=', spaces or control characters)"
        )));
    }
    Ok((k.to_string(), v.to_string()))
}

/// The tags of the command line, checked (a key given twice is an error).
pub fn parse_tags(list: &[String]) -> Result<Vec<(String, String)>, String> {
    let mut tags: Vec<(String, String)> = Vec::new();
    for s in list {
        let (k, v) = parse_tag(s)?;
        if tags.iter().any(|(k2, _)| *k2 == k) {
            return Err(format!(
                "bad --pyroscope-tag '{s}': the key {k} is given twice"
            ));
        }
        tags.push((k, v));
    }
    Ok(tags)
}

/// The default application name: the traced executable's file name (what
/// Pyroscope does not take replaced by `_`), else [`FALLBACK_APP`].
pub fn default_app(exe: Option<&Path>) -> String {
    let name = exe
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A replaced executable reads as "name (deleted)" in /proc.
    let name = name.strip_suffix(" (deleted)").unwrap_or(&name);
    let name: String = name
        .chars()
        .map(|c| if app_char(c) { c } else { '_' })
        .collect();
    if name.is_empty() {
        FALLBACK_APP.to_string()
    } else {
        name
    }
}

/// The push options of the command line, checked before anything runs.
pub fn check_cli(cli: &Cli) -> Result<(), String> {
    let Some(url) = &cli.pyroscope else {
        let given = [
            (cli.pyroscope_app.is_some(), "--pyroscope-app"),
            (!cli.pyroscope_tags.is_empty(), "--pyroscope-tag"),
            (cli.push_buffer_mb.is_some(), "--push-buffer"),
            (cli.push_max_age_s.is_some(), "--push-max-age"),
        ];
        return match given.iter().find(|g| g.0) {
            Some((_, flag)) => Err(format!("{flag} needs --pyroscope URL")),
            None => Ok(()),
        };
    };
    parse_url(url)?;
    if let Some(app) = &cli.pyroscope_app {
        check_app(app)?;
    }
    parse_tags(&cli.pyroscope_tags)?;
    Ok(())
}

/// The configuration the command line asks for; `exe` names the
/// application when `--pyroscope-app` does not. `None` without
/// `--pyroscope`.
pub fn from_cli(cli: &Cli, exe: Option<&Path>) -> Option<Result<PushConfig, String>> {
    let url = cli.pyroscope.as_ref()?;
    Some((|| {
        let app = match &cli.pyroscope_app {
            Some(a) => a.clone(),
            None => default_app(exe),
        };
        let mut c = PushConfig::new(url, &app)?;
        c.tags = parse_tags(&cli.pyroscope_tags)?;
        c.buffer_bytes = cli.push_buffer_mb.unwrap_or(DEFAULT_BUFFER_MB) << 20;
        c.max_age = Duration::from_secs(cli.push_max_age_s.unwrap_or(DEFAULT_MAX_AGE_S));
        c.sample_rate_hz = crate::kernel::kernel_hz();
        Ok(c)
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_and_query() {
        let mut c = PushConfig::new("http://127.0.0.1:4040/", "my.app").unwrap();
        c.tags = parse_tags(&["env=test".into(), "region=us-west-1".into()]).unwrap();
        c.sample_rate_hz = 250;
        assert_eq!(c.name(), "my.app{env=test,region=us-west-1}");
        assert_eq!(
            c.ingest_url(100, 110).as_str(),
            "http://127.0.0.1:4040/ingest?name=my.app%7Benv%3Dtest%2Cregion%3Dus-west-1%7D\
             &from=100&until=110&format=pprof&sampleRate=250&spyName=stapxx-rs"
        );
        let c = PushConfig::new("https://u:secret@h.example/pyro", "a").unwrap();
        assert_eq!(
            c.ingest_url(1, 2).path(),
            "/pyro/ingest",
            "a path prefix is kept"
        );
        assert_eq!(c.name(), "a{}");
        assert_eq!(c.shown_url(), "https://u:***@h.example/pyro/ingest");
    }

    #[test]
    fn bad_values_are_errors() {
        assert_eq!(
            parse_url("ftp://h/").unwrap_err(),
            "bad --pyroscope URL 'ftp://h/': the scheme must be http or https, not 'ftp'"
        );
        assert!(parse_url("localhost:4040").is_err());
        assert!(parse_url("http://h/?x=1").is_err());
        assert_eq!(
            parse_tag("env").unwrap_err(),
            "bad --pyroscope-tag 'env': expected KEY=VALUE"
        );
        assert_eq!(
            parse_tag("en-v=x").unwrap_err(),
            "bad --pyroscope-tag 'en-v=x': '-' is not allowed in a key (letters, digits, '_', '.')"
        );
        assert!(parse_tag("=x").is_err());
        assert!(parse_tag("k=").is_err());
        assert!(parse_tag("k=a,b").is_err());
        assert!(parse_tag("k=a b").is_err());
        assert!(parse_tag("__name__=x").is_err());
        assert_eq!(
            parse_tag("k.a_1=v-1/x").unwrap(),
            ("k.a_1".into(), "v-1/x".into())
        );
        assert!(parse_tags(&["a=1".into(), "a=2".into()]).is_err());
        assert!(check_app("my app").is_err());
        assert!(check_app("").is_err());
        assert!(check_app("svc/my-app.cpu_1").is_ok());
    }

    #[test]
    fn default_app_names() {
        assert_eq!(default_app(Some(Path::new("/usr/bin/luajit"))), "luajit");
        assert_eq!(
            default_app(Some(Path::new("/opt/x/my prog (deleted)"))),
            "my_prog"
        );
        assert_eq!(default_app(None), "stapxx-rs");
        assert_eq!(default_app(Some(Path::new("/"))), "stapxx-rs");
    }
}
