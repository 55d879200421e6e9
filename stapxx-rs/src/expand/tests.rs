use super::follow::{Follow, SOURCE_NAME};
use super::*;
use crate::target::{FileIdentity, MapEntry, TargetInfo};
use grammar::diag::Severity;
use std::sync::atomic::{AtomicUsize, Ordering};

const NGINX: &str = "/usr/local/openresty/nginx/sbin/nginx";
const LUAJIT: &str = "/usr/local/openresty/luajit/lib/libluajit-5.1.so.2.1.0";

fn map(line: &str) -> MapEntry {
    MapEntry::parse(line).unwrap()
}

fn fake_target() -> TargetInfo {
    TargetInfo {
        pid: 4242,
        exe: NGINX.into(),
        root: "/".into(),
        comm: "nginx".into(),
        maps: vec![
            map(&format!("55d000-55e000 r-xp 00000000 08:01 11 {NGINX}")),
            map("55f000-560000 rw-p 00000000 00:00 0 [heap]"),
            map(&format!("7f0000-7f1000 r-xp 00000000 08:01 12 {LUAJIT}")),
            map("7f2000-7f3000 r-xp 00000000 08:01 13 /lib/x86_64-linux-gnu/libc.so.6"),
            map("7f4000-7f5000 r-xp 00000000 08:01 14 /lib/x86_64-linux-gnu/libpcre.so.3"),
            map("7f6000-7f7000 r-xp 00000000 08:01 15 /opt/pcre/lib/libpcre.so.1"),
            map("7f8000-7f9000 r-xp 00000000 08:01 16 /usr/lib/libz.so.1 (deleted)"),
        ],
        identity: None,
    }
}

fn with_target() -> ExpandOptions {
    ExpandOptions {
        target: Some(fake_target()),
        ..ExpandOptions::default()
    }
}

fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Expands `text` as `main.sxx`, checking the line-preservation invariant.
fn run(
    text: &str,
    opts: &ExpandOptions,
) -> Result<(Expansion, SourceMap), (Diagnostic, SourceMap)> {
    let mut sources = SourceMap::new();
    match expand_program(&mut sources, "main.sxx", text, opts) {
        Ok(ex) => {
            for f in &ex.files {
                let orig = &sources.get(f.id).text;
                assert_eq!(
                    orig.matches('\n').count(),
                    f.text.matches('\n').count(),
                    "line count changed in {}",
                    f.path.display()
                );
            }
            Ok((ex, sources))
        }
        Err(e) => Err((e, sources)),
    }
}

fn expand(text: &str, opts: &ExpandOptions) -> String {
    match run(text, opts) {
        Ok((ex, _)) => ex.files[0].text.clone(),
        Err((e, sources)) => panic!("unexpected error: {}", e.render(&sources)),
    }
}

fn expand_err(text: &str, opts: &ExpandOptions) -> String {
    match run(text, opts) {
        Ok((ex, _)) => panic!("expected an error, got {:?}", ex.files[0].text),
        Err((e, sources)) => e.render(&sources),
    }
}

/// A scratch directory of module files, removed on drop.
struct Tree(PathBuf);

impl Tree {
    fn new(files: &[(&str, &str)]) -> Tree {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "stapxx-expand-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        for (path, text) in files {
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        Tree(dir)
    }
    fn path(&self) -> PathBuf {
        self.0.clone()
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---- $^arg_NAME ----------------------------------------------------------

#[test]
fn arg_values_defaults_and_strings() {
    let opts = ExpandOptions {
        args: args(&[("time", "5"), ("limit", "10")]),
        ..ExpandOptions::default()
    };
    let src = "probe timer.s($^arg_time) {}\n\
               foreach (k in s- limit $^arg_limit :default(1000)) {}\n\
               if (c <= $^arg_min :default(2)) {}\n\
               %( \"$^arg_nojit :default()\" != \"\" %? x %)\n";
    assert_eq!(
        expand(src, &opts),
        "probe timer.s(5) {}\n\
         foreach (k in s- limit 10) {}\n\
         if (c <= 2) {}\n\
         %( \"\" != \"\" %? x %)\n"
    );
}

#[test]
fn default_is_everything_up_to_the_first_paren() {
    let src = "a = \"$^arg_m\t:default( GET x)\" b = $^arg_n :default(f(1)) c\n";
    assert_eq!(
        expand(src, &ExpandOptions::default()),
        "a = \" GET x\" b = f(1) c\n"
    );
    // Not a trait: a space after the colon (think `c ? $^arg_a : b`).
    let src = "x = c ? $^arg_a : b(1)\n";
    let opts = ExpandOptions {
        args: args(&[("a", "7")]),
        ..ExpandOptions::default()
    };
    assert_eq!(expand(src, &opts), "x = c ? 7 : b(1)\n");
}

#[test]
fn first_default_sticks() {
    let src = "$^arg_t :default(1) $^arg_t $^arg_t :default(2)\n$^arg_t\n";
    assert_eq!(expand(src, &ExpandOptions::default()), "1 1 1\n1\n");
}

#[test]
fn arg_without_value_or_default() {
    let out = expand_err("x\n  y = $^arg_time\n", &ExpandOptions::default());
    assert_eq!(
        out,
        "main.sxx:2:7: error: $^arg_time is used but no --arg time=VAL option is specified\n\
         \x20     y = $^arg_time\n\
         \x20         ^\n\
         note: or give it a default: $^arg_time :default(VALUE)\n"
    );
    // A default that appears only later does not help an earlier use.
    assert!(
        expand_err("$^arg_t\n$^arg_t :default(1)\n", &ExpandOptions::default())
            .starts_with("main.sxx:1:1: error: $^arg_t is used but no --arg t=VAL")
    );
}

#[test]
fn unknown_variable_and_trait() {
    let out = expand_err("probe begin {\n    $^foo\n}\n", &with_target());
    assert!(
        out.starts_with("main.sxx:2:5: error: undefined built-in variable $^foo\n"),
        "{out}"
    );
    // `-` and `.` end the name, as in stap++.
    let out = expand_err("\"$^libluajit-5.1_path\"\n", &with_target());
    assert!(
        out.contains("undefined built-in variable $^libluajit\n"),
        "{out}"
    );
    let out = expand_err("$^arg_x :dflt(3)\n", &ExpandOptions::default());
    assert!(
        out.starts_with("main.sxx:1:1: error: unknown trait name: dflt\n"),
        "{out}"
    );
    // `$^arg_` alone is not an argument.
    let out = expand_err("$^arg_\n", &ExpandOptions::default());
    assert!(
        out.contains("undefined built-in variable $^arg_\n"),
        "{out}"
    );
    // `$^` without a name is left alone.
    assert_eq!(
        expand("a $^ b $^-1 $", &ExpandOptions::default()),
        "a $^ b $^-1 $"
    );
}

#[test]
fn unused_arg_warning() {
    let opts = ExpandOptions {
        args: args(&[("time", "5"), ("limti", "3")]),
        ..ExpandOptions::default()
    };
    let (ex, sources) = run("$^arg_time\n", &opts).unwrap();
    assert_eq!(ex.warnings.len(), 1);
    assert_eq!(ex.warnings[0].severity, Severity::Warning);
    assert_eq!(
        ex.warnings[0].render(&sources),
        "warning: $^arg_limti is defined by \"--arg limti=3\", but never used.\n"
    );
}

#[test]
fn value_with_newline_is_rejected() {
    let opts = ExpandOptions {
        args: args(&[("x", "a\nb")]),
        ..ExpandOptions::default()
    };
    let out = expand_err("y = $^arg_x\n", &opts);
    assert!(out.starts_with("main.sxx:1:5: error: the value of $^arg_x contains a newline"));
}

// ---- target variables ----------------------------------------------------

/// `--arg` values are expanded as stap++ expands them: `$^exec_path`,
/// `$^libNAME_path`, `@pfunc` and `$*NAME` in a value become their text;
/// `$^arg_` in a value stays (no recursion); an error in a value is
/// placed at the `$^arg_` that brought it in.
#[test]
fn arg_values_are_expanded_too() {
    let opts = ExpandOptions {
        args: args(&[
            ("probe", "process(\"$^exec_path\").function(\"f\")"),
            ("p2", "@pfunc(ngx_http_log_request)"),
            ("loop", "$^arg_loop"),
        ]),
        ..with_target()
    };
    assert_eq!(
        expand("probe $^arg_probe, $^arg_p2 { $^arg_loop }\n", &opts),
        format!(
            "probe process(\"{NGINX}\").function(\"f\"), \
             process(\"{NGINX}\").function(\"ngx_http_log_request\") {{ $^arg_loop }}\n"
        )
    );
    let none = ExpandOptions {
        args: args(&[("f", "process(\"$^exec_path\").function(\"f\")")]),
        ..ExpandOptions::default()
    };
    let err = expand_err("probe $^arg_f {}\n", &none);
    assert!(
        err.starts_with(
            "main.sxx:1:7: error: in the value of --arg f: $^exec_path is used but neither -x \
             <pid> nor --exec <path> is specified"
        ),
        "{err}"
    );
}

#[test]
fn exec_path_target_and_pid_ok() {
    let src = "\"$^exec_path\" $^target $^pid_ok\n";
    assert_eq!(
        expand(src, &with_target()),
        format!("\"{NGINX}\" 4242 pid() == target()\n")
    );
    let master = ExpandOptions {
        workers: vec![101, 102],
        exec_path: Some("/usr/sbin/nginx".into()),
        follow: Some(Follow::Master { pid: 100 }),
        ..with_target()
    };
    assert_eq!(
        expand(src, &master),
        "\"/usr/sbin/nginx\" 101 102 __stapxx_pid_ok()\n"
    );
    let exec_only = ExpandOptions {
        exec_path: Some("/usr/bin/luajit".into()),
        ..ExpandOptions::default()
    };
    assert_eq!(expand(src, &exec_only), "\"/usr/bin/luajit\" ANY 1\n");

    let none = ExpandOptions::default();
    assert!(expand_err("$^exec_path", &none).starts_with(
        "main.sxx:1:1: error: $^exec_path is used but neither -x <pid> nor --exec <path> is specified\n"
    ));
    assert!(expand_err("x $^target", &none)
        .starts_with("main.sxx:1:3: error: $^target is used but none of -x <pid>"));
    assert!(expand_err("$^pid_ok", &none).contains("$^pid_ok is used but none of"));
    // A default stands in for a missing target.
    assert_eq!(expand("$^exec_path :default(/bin/x)", &none), "/bin/x");
}

#[test]
fn library_paths() {
    let (ex, sources) = run(
        "@cast(L, \"lua_State\", \"$^libluajit_path\")\n$^libc_path $^libluajit_path\n",
        &with_target(),
    )
    .unwrap();
    assert_eq!(
        ex.files[0].text,
        format!(
            "@cast(L, \"lua_State\", \"{LUAJIT}\")\n/lib/x86_64-linux-gnu/libc.so.6 {LUAJIT}\n"
        )
    );
    assert!(ex.warnings.is_empty(), "{:?}", ex.warnings);

    // Two exact matches: the first in path order wins, with a warning, once.
    let (ex, sources2) = run("$^libpcre_path\n$^libpcre_path\n", &with_target()).unwrap();
    assert_eq!(
        ex.files[0].text,
        "/lib/x86_64-linux-gnu/libpcre.so.3\n/lib/x86_64-linux-gnu/libpcre.so.3\n"
    );
    assert_eq!(ex.warnings.len(), 1);
    assert_eq!(
        ex.warnings[0].render(&sources2),
        "main.sxx:1:1: warning: ignored ambiguous library /opt/pcre/lib/libpcre.so.1 for \
         $^libpcre_path (using /lib/x86_64-linux-gnu/libpcre.so.3)\n\
         \x20   $^libpcre_path\n\
         \x20   ^\n"
    );
    drop(sources);

    // A library replaced on disk since it was mapped: found, with a warning.
    let (ex, sources) = run("$^libz_path", &with_target()).unwrap();
    assert_eq!(ex.files[0].text, "/usr/lib/libz.so.1");
    assert_eq!(ex.warnings.len(), 1);
    assert!(ex.warnings[0].render(&sources).starts_with(
        "main.sxx:1:1: warning: /usr/lib/libz.so.1 was deleted or replaced after process 4242 \
         mapped it: what it runs is read from its mapping (/proc/4242/map_files), not from the \
         file now at that path\n"
    ));

    // Not mapped: the executable, with a warning kept aside (shown with -v
    // or with an error about the executable), once.
    let (ex, sources) = run("x $^libssl_path\n$^libssl_path\n", &with_target()).unwrap();
    assert_eq!(ex.files[0].text, format!("x {NGINX}\n{NGINX}\n"));
    assert!(ex.warnings.is_empty(), "{:?}", ex.warnings);
    assert_eq!(ex.assumed_static.len(), 1);
    assert_eq!(ex.assumed_static[0].path, NGINX);
    assert!(ex.assumed_static[0].warning.render(&sources).starts_with(&format!(
        "main.sxx:1:3: warning: libssl is not found, assuming it is statically linked (into {NGINX})\n"
    )));

    // Libraries from elsewhere (ldd of --exec).
    let exec_only = ExpandOptions {
        exec_path: Some("/usr/bin/luajit".into()),
        extra_libraries: vec!["/usr/lib/libluajit-5.1.so.2".into()],
        ..ExpandOptions::default()
    };
    assert_eq!(
        expand("$^libluajit_path", &exec_only),
        "/usr/lib/libluajit-5.1.so.2"
    );

    // Nothing to fall back to.
    assert!(
        expand_err("$^libluajit_path", &ExpandOptions::default()).starts_with(
            "main.sxx:1:1: error: $^libluajit_path is used but neither -x <pid> nor --exec <path>"
        )
    );
    // `lib_path` has no library name.
    assert!(expand_err("$^lib_path", &with_target()).contains("undefined built-in variable"));
}

#[test]
fn pfunc() {
    let src = "probe @pfunc(ngx_http_upstream_finalize_request),\n      @pfunc ( f2 ) {}\n";
    assert_eq!(
        expand(src, &with_target()),
        format!(
            "probe process(\"{NGINX}\").function(\"ngx_http_upstream_finalize_request\"),\n      \
             process(\"{NGINX}\").function(\"f2\") {{}}\n"
        )
    );
    // Not @pfunc: left alone.
    assert_eq!(
        expand("@pfuncs(x) @pfunc x", &with_target()),
        "@pfuncs(x) @pfunc x"
    );
    assert!(expand_err("@pfunc(a b)", &with_target())
        .starts_with("main.sxx:1:1: error: @pfunc expects one function name"));
    assert!(expand_err("  @pfunc(f)", &ExpandOptions::default())
        .starts_with("main.sxx:1:3: error: $^exec_path is used but neither"));
}

// ---- $*NAME bindings -------------------------------------------------------

#[test]
fn bindings() {
    let src = "function f(L) {\n    $*L := @cast(L, \"lua_State\", \"$^libluajit_path\")\n    return $*L->glref->ptr32\n}\n";
    assert_eq!(
        expand(src, &with_target()),
        format!(
            "function f(L) {{\n    \n    return @cast(L, \"lua_State\", \"{LUAJIT}\")->glref->ptr32\n}}\n"
        )
    );
    // `&`, `[N]`, @var, nested parentheses and a `)` in a string; rebinding.
    let src = "$*c := &@var(\"ngx_cycle\", \"/x\")[0]\n\
               $*t := @cast(tvref(L->stack), \"TValue\", \"a)b\") $*t->x\n\
               $*c $*t\n\
               $*t := @cast(q, \"T\")\n\
               $*t\n";
    assert_eq!(
        expand(src, &ExpandOptions::default()),
        "\n \
         @cast(tvref(L->stack), \"TValue\", \"a)b\")->x\n\
         &@var(\"ngx_cycle\", \"/x\")[0] @cast(tvref(L->stack), \"TValue\", \"a)b\")\n\
         \n\
         @cast(q, \"T\")\n"
    );
    // Bound text may use other bindings.
    assert_eq!(
        expand(
            "$*g := @cast(g, \"G\")\n$*s := @cast($*g->strhash, \"S\")\n$*s\n",
            &ExpandOptions::default()
        ),
        "\n\n@cast(@cast(g, \"G\")->strhash, \"S\")\n"
    );
}

#[test]
fn binding_errors() {
    let out = expand_err("x = 1\n  return $*L->glref\n", &ExpandOptions::default());
    assert_eq!(
        out,
        "main.sxx:2:10: error: undefined user variable $*L\n\
         \x20     return $*L->glref\n\
         \x20            ^\n\
         note: bind it earlier in this file: $*L := @cast(...) or @var(...)\n"
    );
    assert!(expand_err("$*x := foo(1)", &ExpandOptions::default())
        .starts_with("main.sxx:1:1: error: $*x can only be bound to @cast(...) or @var(...)"));
    assert!(
        expand_err("$*x := @cast(a, \"T\"", &ExpandOptions::default())
            .starts_with("main.sxx:1:8: error: unbalanced parentheses in the binding of $*x")
    );
    // `$*` without a name is left alone.
    assert_eq!(
        expand("a $* b $*( $", &ExpandOptions::default()),
        "a $* b $*( $"
    );
}

// ---- @use ------------------------------------------------------------------

#[test]
fn use_modules() {
    let tree = Tree::new(&[
        (
            "nginx/lua.sxx",
            "// module nginx.lua\n@use nginx.config\nfunction m() { $*l := @cast(l, \"L\", \"$^exec_path\")\n return $*l }\n",
        ),
        ("nginx/config.sxx", "#!/whatever\nfunction c() { return $^arg_x :default(9) }\n"),
        ("luajit.sxx", "@use nginx.config\nfunction lj() { return \"$^libluajit_path\" }\n"),
    ]);
    let opts = ExpandOptions {
        search_path: vec![tree.path()],
        ..with_target()
    };
    let src = "#!/usr/bin/env stap++\n\n@use nginx.lua\n@use luajit, nginx.config\nx = $^arg_x\n";
    let (ex, sources) = run(src, &opts).unwrap();
    assert_eq!(ex.files[0].text, "#!/usr/bin/env stap\n\n\n\nx = 9\n");
    let names: Vec<Option<&str>> = ex.files.iter().map(|f| f.module.as_deref()).collect();
    assert_eq!(
        names,
        [
            None,
            Some("nginx.lua"),
            Some("nginx.config"),
            Some("luajit")
        ]
    );
    assert_eq!(ex.files[1].path, tree.path().join("nginx/lua.sxx"));
    assert_eq!(
        ex.files[1].text,
        format!(
            "// module nginx.lua\n\nfunction m() {{ \n return @cast(l, \"L\", \"{NGINX}\") }}\n"
        )
    );
    assert_eq!(
        ex.files[2].text,
        "#!/usr/bin/env stap\nfunction c() { return 9 }\n"
    );
    assert_eq!(
        ex.files[3].text,
        format!("\nfunction lj() {{ return \"{LUAJIT}\" }}\n")
    );
    // The source map holds the original texts under the found paths.
    assert_eq!(sources.get(ex.files[0].id).name, "main.sxx");
    assert_eq!(sources.get(ex.files[0].id).text, src);
    assert_eq!(
        sources.get(ex.files[2].id).name,
        tree.path().join("nginx/config.sxx").display().to_string()
    );
    assert_eq!(ex.used_args.get("x"), Some(&Some("9".to_string())));
}

#[test]
fn bindings_are_scoped_to_their_file() {
    let tree = Tree::new(&[("m.sxx", "function f() { return $*L }\n")]);
    let opts = ExpandOptions {
        search_path: vec![tree.path()],
        ..ExpandOptions::default()
    };
    let (err, sources) = run("$*L := @cast(L, \"T\")\n@use m\n", &opts).unwrap_err();
    let out = err.render(&sources);
    let file = tree.path().join("m.sxx");
    assert!(
        out.starts_with(&format!(
            "{}:1:23: error: undefined user variable $*L",
            file.display()
        )),
        "{out}"
    );
}

#[test]
fn use_search_order_and_cycles() {
    let first = Tree::new(&[
        ("a.sxx", "@use b\nfunction a1() {}\n"),
        ("b.sxx", "@use a\n"),
    ]);
    let second = Tree::new(&[("a.sxx", "function a2() {}\n")]);
    let opts = ExpandOptions {
        search_path: vec![first.path(), second.path()],
        ..ExpandOptions::default()
    };
    let (ex, _) = run("@use a\n@use a\n", &opts).unwrap();
    assert_eq!(ex.files.len(), 3);
    assert_eq!(ex.files[1].text, "\nfunction a1() {}\n");
    assert_eq!(ex.files[2].text, "\n");
}

#[test]
fn use_errors() {
    let tree = Tree::new(&[("bad.sxx", "")]);
    // A byte that is not UTF-8 in a comment is harmless; in code it is an
    // error at its own place in the module.
    std::fs::write(
        tree.path().join("bad.sxx"),
        b"# caf\xe9\nfunction f() { return 1 }\nglobal x\xff\n",
    )
    .unwrap();
    std::fs::create_dir_all(tree.path().join("dir.sxx")).unwrap();
    let opts = ExpandOptions {
        search_path: vec![tree.path(), "tapsets".into()],
        ..ExpandOptions::default()
    };
    let out = expand_err("\n@use luajit, nginx.lua\n", &opts);
    assert_eq!(
        out,
        format!(
            "main.sxx:2:6: error: cannot find @use library luajit\n\
             \x20   @use luajit, nginx.lua\n\
             \x20        ^\n\
             note: not found: {}\n\
             note: not found: tapsets/luajit.sxx\n\
             note: add a directory to the search path with -I DIR\n",
            tree.path().join("luajit.sxx").display()
        )
    );
    // A directory is not a module.
    assert!(expand_err("@use dir", &opts).contains("cannot find @use library dir"));
    let out = expand_err("@use   bad", &opts);
    assert_eq!(
        out,
        format!(
            "{}:3:9: error: byte 0xff is not UTF-8 text (outside strings and comments only ASCII is allowed)\n\
             \x20   global x\u{fffd}\n\
             \x20           ^\n",
            tree.path().join("bad.sxx").display()
        )
    );
    let none = ExpandOptions::default();
    assert!(expand_err("@use x", &none).contains("note: the module search path is empty"));
    assert!(
        expand_err("@use ;", &none).starts_with("main.sxx:1:1: error: @use expects module names")
    );
    assert!(
        expand_err("@use a,", &none).starts_with("main.sxx:1:1: error: @use expects module names")
    );
    // Not @use.
    assert_eq!(expand("@user x @use", &none), "@user x @use");
}

// ---- --args ----------------------------------------------------------------

#[test]
fn list_args_mode() {
    let tree = Tree::new(&[("m.sxx", "$^arg_depth :default(30) $^arg_zz $^libfoo_path\n")]);
    let opts = ExpandOptions {
        mode: ExpandMode::ListArgs,
        args: args(&[("time", "5"), ("unused", "1")]),
        search_path: vec![tree.path()],
        ..ExpandOptions::default()
    };
    let src = "@use m\n$^arg_time $^arg_limit :default(1000) $^arg_method :default()\n\
               $^exec_path $^bogus $^arg_time :default(60) $^arg_limit :default(5)\n";
    let (ex, _) = run(src, &opts).unwrap();
    assert_eq!(ex.files[0].text, "\n 1000 \n  60 1000\n");
    assert_eq!(
        ex.args_listing(),
        "\t--arg depth=VALUE (default: 30)\n\
         \t--arg limit=VALUE (default: 1000)\n\
         \t--arg method=VALUE (default: )\n\
         \t--arg time=VALUE (default: 60)\n\
         \t--arg zz=VALUE\n"
    );
    assert!(ex.warnings.is_empty());
    // Unbound user variables are still errors.
    assert!(expand_err("$*x", &opts).contains("undefined user variable $*x"));
}

#[test]
fn args_listing_format() {
    let mut used = BTreeMap::new();
    assert_eq!(format_args_listing(&used), "");
    used.insert("b".to_string(), None);
    used.insert("a".to_string(), Some("x y".to_string()));
    assert_eq!(
        format_args_listing(&used),
        "\t--arg a=VALUE (default: x y)\n\t--arg b=VALUE\n"
    );
}

// ---- spans -----------------------------------------------------------------

#[test]
fn spans_map_back_to_the_original() {
    let opts = ExpandOptions {
        args: args(&[("time", "12345")]),
        ..with_target()
    };
    let src = "$*L := @cast(L, \"T\")\nx = $^arg_time + $*L bad\n";
    let (ex, sources) = run(src, &opts).unwrap();
    let f = &ex.files[0];
    assert_eq!(f.text, "\nx = 12345 + @cast(L, \"T\") bad\n");
    let exp_bad = f.text.find("bad").unwrap();
    let orig_bad = src.find("bad").unwrap();
    assert_eq!(f.original_offset(exp_bad), orig_bad);
    assert_eq!(f.original_offset(0), src.find('\n').unwrap());
    // Inside a replacement: the start of what it replaced.
    let exp_in = f.text.find("2345").unwrap();
    assert_eq!(f.original_offset(exp_in), src.find("$^arg_time").unwrap());
    assert_eq!(f.original_offset(f.text.len()), src.len());

    let d = Diagnostic::error(Span::new(f.id, exp_bad, exp_bad + 3), "syntax error");
    assert_eq!(
        ex.map_diagnostic(d).render(&sources),
        "main.sxx:2:22: error: syntax error\n    x = $^arg_time + $*L bad\n                         ^\n"
    );
    // Spans of other files are left alone.
    let other = Span::new(FileId(99), 1, 2);
    assert_eq!(ex.map_span(other), other);
    assert_eq!(f.map_span(other), other);
    assert_eq!(ex.main().unwrap().id, f.id);
    assert!(ex.file(FileId(99)).is_none());
}

// ---- robustness ------------------------------------------------------------

#[test]
fn no_panics_on_odd_input() {
    let tree = Tree::new(&[("m.sxx", "$*q\n")]);
    let pieces = [
        "$",
        "$^",
        "$*",
        "@",
        "@use",
        "@use ",
        "@pfunc",
        "@pfunc(",
        "(",
        ")",
        ":",
        ":=",
        " ",
        "\t",
        "\n",
        "\r\n",
        "\"",
        "\\",
        "é",
        "日本",
        "arg_",
        "lib",
        "_path",
        "x",
        "1",
        ",",
        ".",
        ":default(",
        "@cast(",
        "@var(",
        "&",
        "[",
        "]",
        "m",
        "#!",
        "$^arg_t",
        "$*q := ",
    ];
    let modes = [ExpandMode::Run, ExpandMode::ListArgs];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for round in 0..4000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let len = (seed % 12) as usize;
        let mut text = String::new();
        let mut s = seed;
        for _ in 0..len {
            text.push_str(pieces[(s % pieces.len() as u64) as usize]);
            s = s
                .rotate_left(7)
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1);
        }
        let opts = ExpandOptions {
            mode: modes[round % 2],
            search_path: vec![tree.path()],
            ..with_target()
        };
        let mut sources = SourceMap::new();
        match expand_program(&mut sources, "f.sxx", &text, &opts) {
            Ok(ex) => {
                let f = &ex.files[0];
                assert_eq!(
                    f.text.matches('\n').count(),
                    text.matches('\n').count(),
                    "{text:?}"
                );
                for off in 0..=f.text.len() + 2 {
                    let o = f.original_offset(off);
                    let _ = sources.get(f.id).line_col(o as u32);
                }
                for w in &ex.warnings {
                    let _ = w.render(&sources);
                }
            }
            Err(e) => {
                let _ = e.render(&sources);
            }
        }
    }
    assert_eq!(expand("$^arg_t :default(é)日本", &with_target()), "é日本");
}

// ---- following processes: --master, --procs-of --------------------------

fn procs_of() -> Follow {
    Follow::Procs {
        path: "/usr/bin/luajit".into(),
        exe: FileIdentity {
            dev: (254 << 20) | 1,
            ino: 1234,
        },
    }
}

#[test]
fn pid_ok_follow_code_comes_once_after_the_users_files() {
    let tree = Tree::new(&[("m.sxx", "function f() { return $^pid_ok }\n")]);
    for follow in [Follow::Master { pid: 100 }, procs_of()] {
        let opts = ExpandOptions {
            follow: Some(follow.clone()),
            search_path: vec![tree.path()],
            ..with_target()
        };
        let (ex, sources) = run(
            "@use m\nprobe timer.profile { if ($^pid_ok && $^pid_ok) n++ }\n",
            &opts,
        )
        .unwrap();
        assert_eq!(
            ex.files[0].text,
            "\nprobe timer.profile { if (__stapxx_pid_ok() && __stapxx_pid_ok()) n++ }\n"
        );
        assert_eq!(
            ex.files[1].text,
            "function f() { return __stapxx_pid_ok() }\n"
        );
        assert_eq!(ex.files.len(), 3, "{follow:?}");
        let generated = &ex.files[2];
        assert!(generated.generated && !ex.files[0].generated && !ex.files[1].generated);
        assert_eq!(generated.text, follow.source());
        assert_eq!(sources.get(generated.id).name, SOURCE_NAME);
        assert_eq!(sources.get(generated.id).text, follow.source());

        // A script that never asks gets none of it.
        let (ex, _) = run("probe begin { println($^target) }\n", &opts).unwrap();
        assert_eq!(ex.files.len(), 1);
        assert!(!ex.files[0].generated);
    }
}

#[test]
fn follow_code_parses_and_says_what_it_follows() {
    let config = grammar::PpConfig::default();
    let macros = grammar::MacroTable::new();
    for (follow, functions_only) in [(Follow::Master { pid: 4242 }, false), (procs_of(), true)] {
        let text = follow.source();
        let mut sources = SourceMap::new();
        let id = sources.add(SOURCE_NAME, text.as_str());
        let file = grammar::parse_source(id, &text, &config, &macros)
            .unwrap_or_else(|d| panic!("{}", d.render(&sources)));
        let functions: Vec<&str> = file
            .items
            .iter()
            .filter_map(|i| match i {
                grammar::ast::Item::Function(f) => Some(f.name.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(functions, ["__stapxx_pid_ok", "__stapxx_exiting"]);
        assert_eq!(file.items.len() == 2, functions_only, "{text}");
    }
    insta::assert_snapshot!("follow_master", Follow::Master { pid: 4242 }.source());
    insta::assert_snapshot!("follow_procs_of", procs_of().source());
}
