//! Never write what it reads, never leak (issue 10): `build` refuses to write over an input or through a link, `demo` never replaces a file, no output ever holds a password, and control characters are escaped.

use super::*;

/// Every file under `dir` (not following links) with a BLAKE3 of its bytes,
/// or of its link target for a symbolic link.
fn tree_state(dir: &Path) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir(dir).expect("read dir") {
        let p = e.expect("dir entry").path();
        let meta = std::fs::symlink_metadata(&p).expect("metadata");
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let digest = if meta.file_type().is_symlink() {
            format!("-> {}", std::fs::read_link(&p).unwrap().display())
        } else if meta.is_dir() {
            "dir".to_string()
        } else {
            blake3::hash(&std::fs::read(&p).expect("read"))
                .to_hex()
                .to_string()
        };
        out.insert((name, digest));
    }
    out
}

/// `build --out` naming an input of the run, however spelled, is refused
/// with exit 2 before anything is written; so is a link, and an existing
/// file that is not a tree file. A link planted at the old temporary name is
/// never followed, and no temporary file is left behind.
#[cfg(unix)]
#[test]
fn build_never_writes_over_an_input_or_through_a_link() {
    use std::os::unix::fs::symlink;
    let dir = Scratch::new("out-is-input");
    let sub = dir.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    let x = db(
        dir.path(),
        "X.db",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a');",
    );
    std::fs::write(dir.join("c.toml"), "").unwrap();
    std::fs::write(dir.join("victim.txt"), "precious").unwrap();
    std::fs::write(dir.join("notes.txt"), "not a tree").unwrap();
    std::fs::hard_link(&x, dir.join("hard.db")).unwrap();
    symlink(&x, dir.join("soft.dstree")).unwrap();
    symlink(dir.path(), dir.join("dirlink")).unwrap();
    symlink(dir.join("victim.txt"), dir.join("elsewhere.dstree")).unwrap();
    let d = dir.path().display().to_string();
    let db_url = url(&x);
    let relative = format!("sqlite:{d}/sub/../X.db");
    // (db URL, --out, what the message must say)
    let cases: Vec<(String, String, &str)> = vec![
        (db_url.clone(), x.display().to_string(), "is the database"),
        (db_url.clone(), format!("{d}/./X.db"), "is the database"),
        (
            db_url.clone(),
            format!("{d}/sub/../X.db"),
            "is the database",
        ),
        (relative, x.display().to_string(), "is the database"),
        (
            db_url.clone(),
            format!("{d}/dirlink/X.db"),
            "is the database",
        ),
        (db_url.clone(), format!("{d}/hard.db"), "is the database"),
        (
            db_url.clone(),
            format!("{d}/soft.dstree"),
            "is the database",
        ),
        (
            db_url.clone(),
            format!("{d}/X.db-wal"),
            "beside the database",
        ),
        (
            db_url.clone(),
            format!("{d}/X.db-journal"),
            "beside the database",
        ),
        (
            db_url.clone(),
            format!("{d}/X.db-shm"),
            "beside the database",
        ),
        (db_url.clone(), format!("{d}/c.toml"), "is the config file"),
        (
            db_url.clone(),
            format!("{d}/elsewhere.dstree"),
            "is a symbolic link",
        ),
        (
            db_url.clone(),
            format!("{d}/notes.txt"),
            "is not a driftsum tree file",
        ),
        (db_url.clone(), format!("{d}/sub"), "is not a file"),
    ];
    let before = tree_state(dir.path());
    for (db_url, out, says) in &cases {
        let config = dir.join("c.toml").display().to_string();
        let r = run(&[
            "build", "--db", db_url, "--table", "t", "--out", out, "--config", &config,
        ]);
        assert_code(&r, 2);
        assert!(r.stderr.contains(says), "--out {out}: {r:#?}");
        assert!(r.stderr.contains("--out"), "{r:#?}");
        assert_eq!(tree_state(dir.path()), before, "--out {out} changed a file");
        assert!(listing(&sub).is_empty(), "--out {out}: {:?}", listing(&sub));
    }

    // A link planted where a temporary file used to go is left alone.
    let out = dir.join("t.dstree");
    symlink(&x, dir.join("t.dstree.tmp")).unwrap();
    let before = tree_state(dir.path());
    for _ in 0..2 {
        let r = run(&[
            "build",
            "--db",
            &db_url,
            "--table",
            "t",
            "--out",
            &out.display().to_string(),
        ]);
        assert_code(&r, 0);
    }
    let mut after = tree_state(dir.path());
    let made = after
        .iter()
        .find(|(n, _)| n == "t.dstree")
        .cloned()
        .expect("tree file written");
    after.remove(&made);
    assert_eq!(
        after, before,
        "something besides t.dstree changed or was left"
    );
    let r = diff(&x, &x, &[]);
    assert_code(&r, 0);
}

/// `demo` never replaces a file it did not create: any of its files (or a
/// file SQLite keeps beside one, or a link) already in the folder is refused
/// with exit 2 and nothing is written; a second run in the same folder too.
#[cfg(unix)]
#[test]
fn demo_never_replaces_a_file() {
    for planted in [
        "source.db",
        "replica.db",
        "replica.db-journal",
        "source.db-wal",
        "watched",
        "link:replica.db",
        "link:source.db",
    ] {
        let dir = Scratch::new("demo-refuses");
        let d = dir.join("d");
        std::fs::create_dir_all(&d).unwrap();
        let victim = dir.join("victim.db");
        std::fs::write(&victim, "precious").unwrap();
        let name = match planted.strip_prefix("link:") {
            Some(n) => {
                std::os::unix::fs::symlink(&victim, d.join(n)).unwrap();
                n
            }
            None => {
                std::fs::write(d.join(planted), "keep me").unwrap();
                planted
            }
        };
        let before = (tree_state(dir.path()), tree_state(&d));
        let r = run(&["demo", "--dir", &d.display().to_string()]);
        assert_code(&r, 2);
        assert!(
            r.stderr.contains(&format!("{name} already exists")),
            "{r:#?}"
        );
        assert!(r.stderr.contains("another --dir"), "{r:#?}");
        assert!(r.stdout.is_empty(), "{r:#?}");
        assert_eq!(
            (tree_state(dir.path()), tree_state(&d)),
            before,
            "{planted}"
        );
    }
    let dir = Scratch::new("demo-twice");
    let d = dir.join("d").display().to_string();
    assert_code(&run(&["demo", "--dir", &d]), 0);
    let before = tree_state(&dir.join("d"));
    assert_eq!(
        before.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["replica.db", "source.db", "watched"]
    );
    let r = run(&["demo", "--dir", &d]);
    assert_code(&r, 2);
    assert!(r.stderr.contains("source.db already exists"), "{r:#?}");
    assert_eq!(tree_state(&dir.join("d")), before);
}

/// URL shapes for the password property test; every one names an
/// unreachable server (port 1), so every command fails with exit 2.
const LEAK_SHAPES: &[&str] = &[
    "postgres://u:{pw}@127.0.0.1:1/db",
    "postgresql://u:{pw}@127.0.0.1:1/db?sslmode=disable",
    "mysql://root:{pw}@127.0.0.1:1/test",
    "mariadb://u:{pw}@[::1]:1/db",
    "postgres://:{pw}@127.0.0.1:1",
    "postgres://u@127.0.0.1:1/db?password={pw}",
    "mysql://u@127.0.0.1:1/db?ssl-mode=disabled&password={pw}",
    "host=127.0.0.1 port=1 password={pw}",
    // No host: the password must not be read as a port and database.
    "postgres://u:{pw}",
];

/// The commands each URL is given to: as a source, a build's database, an
/// agent's database, and in usage errors clap quotes.
fn leak_commands<'a>(u: &'a str, scratch: &'a str) -> Vec<Vec<String>> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    vec![
        s(&[
            "diff",
            "--source",
            u,
            "--target",
            &format!("sqlite:{scratch}/none.db"),
        ]),
        s(&[
            "diff",
            "--source",
            &format!("sqlite:{scratch}/none.db"),
            "--target",
            u,
        ]),
        s(&[
            "build",
            "--db",
            u,
            "--table",
            "t",
            "--out",
            &format!("{scratch}/o.dstree"),
        ]),
        s(&[
            "serve",
            "--db",
            u,
            "--token-file",
            &format!("{scratch}/none"),
        ]),
        s(&[
            "diff",
            "--source",
            "sqlite:a.db",
            "--target",
            "sqlite:b.db",
            u,
        ]),
        s(&[
            "build",
            "--db",
            "sqlite:a",
            "--table",
            "t",
            "--out",
            "x",
            "--connections",
            u,
        ]),
        s(&[
            "diff",
            &format!("--source={u}"),
            "--target",
            "sqlite:b.db",
            "--format",
            "yaml",
        ]),
    ]
}

fn run_owned(args: &[String]) -> Run {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&a)
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(24))]

    /// For passwords drawn from a wide alphabet (every printable ASCII
    /// character, so `/ ? # @ : % & =` and spaces, and non-ASCII), written
    /// unencoded into every URL shape, no output of the binary holds the
    /// password or any 4-character piece of it that the same command with
    /// another password does not print too.
    #[test]
    fn no_output_ever_holds_a_password(
        pw in "[ -~é日€]{8,20}",
        shape in 0..LEAK_SHAPES.len(),
    ) {
        let shape = LEAK_SHAPES[shape];
        let hostless = !shape.contains('@') && !shape.contains("password=");
        let url_like = pw.starts_with(|c: char| c.is_ascii_digit())
            && pw.chars().all(|c| c.is_ascii_alphanumeric() || "_.-%$/?=&".contains(c));
        // Without a host, `a@b` makes a well-formed URL naming host b.
        proptest::prop_assume!(!hostless || !(pw.contains('@') || url_like));
        let dir = Scratch::new("leak");
        let scratch = dir.path().display().to_string();
        let url = shape.replace("{pw}", &pw);
        let neutral = shape.replace("{pw}", "ZZZZZZZZ");
        for (args, base) in leak_commands(&url, &scratch)
            .into_iter()
            .zip(leak_commands(&neutral, &scratch))
        {
            let r = run_owned(&args);
            proptest::prop_assert_eq!(r.code, 2, "{:?}: {:#?}", args, r);
            let seen = format!("{}\n{}", r.stdout, r.stderr);
            proptest::prop_assert!(!seen.contains(&pw), "{:?}: {:#?}", args, r);
            let b = run_owned(&base);
            let baseline = format!("{}\n{}{}", b.stdout, b.stderr, neutral);
            let c: Vec<char> = pw.chars().collect();
            for i in 0..c.len() - 3 {
                let piece: String = c[i..i + 4].iter().collect();
                if !baseline.contains(&piece) {
                    proptest::prop_assert!(
                        !seen.contains(&piece),
                        "{:?} shows {:?}: {:#?}", args, piece, r
                    );
                }
            }
        }
    }
}

/// Control characters (escapes, carriage returns, newlines, bells), C1
/// controls and bidi overrides in table names, column names and key values
/// never reach the terminal raw: the text report, the error lines and
/// `build`'s summary show them escaped.
#[test]
fn names_with_control_characters_are_escaped() {
    let hostile = [
        "\x1b[31m", "\r", "\n", "\x07", "\u{202e}", "\u{2066}", "\u{9b}2J", "\x08", "\u{200b}",
    ];
    let raw = |s: &str| {
        s.chars().find(|&c| {
            (c.is_control() && c != '\n')
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200b}'..='\u{200f}')
        })
    };
    for h in hostile {
        let dir = Scratch::new("escape");
        let (t, c) = (format!("t{h}x"), format!("c{h}y"));
        let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        let make = |name: &str, extra: &str| {
            let p = dir.join(name);
            let conn = Connection::open(&p).unwrap();
            conn.execute_batch(&format!(
                "CREATE TABLE {} ({} TEXT PRIMARY KEY, {} TEXT);",
                q(&t),
                q(&c),
                q(&format!("v{c}"))
            ))
            .unwrap();
            let ins = format!("INSERT INTO {} VALUES (?1, ?2)", q(&t));
            for (k, v) in [("a", "1"), (&*format!("k{h}"), "2"), ("z", "3")] {
                conn.execute(&ins, params![k, v]).unwrap();
            }
            conn.execute_batch(extra).unwrap();
            p
        };
        let src = make("s.db", "");
        let tgt = make(
            "t.db",
            &format!(
                "UPDATE {} SET {} = 'changed{h}'; DELETE FROM {} WHERE {} = 'a';",
                q(&t),
                q(&format!("v{c}")),
                q(&t),
                q(&c)
            ),
        );
        let r = diff(&src, &tgt, &[]);
        assert_code(&r, 1);
        assert_eq!(raw(&r.stdout), None, "{h:?}: {r:#?}");
        assert_eq!(raw(&r.stderr), None, "{h:?}: {r:#?}");
        // Every line is the report's own: no name or value started one.
        assert!(
            r.stdout
                .lines()
                .all(|l| l.starts_with("  ") || l.starts_with('"')),
            "{h:?}: {}",
            r.stdout
        );
        let escaped: String = h.chars().flat_map(char::escape_debug).collect();
        assert!(r.stdout.contains(&escaped), "{h:?}: {}", r.stdout);
        // Errors that quote a name, and build's summary line.
        let r = diff(&src, &tgt, &["--table", &format!("nope{h}")]);
        assert_code(&r, 2);
        assert_eq!(raw(&r.stdout), None, "{h:?}: {r:#?}");
        assert_eq!(raw(&r.stderr), None, "{h:?}: {r:#?}");
        let out = dir.join(&format!("o{h}.dstree")).display().to_string();
        let r = run(&["build", "--db", &url(&src), "--table", &t, "--out", &out]);
        assert_code(&r, 0);
        assert_eq!(raw(&r.stdout), None, "{h:?}: {r:#?}");
        assert!(r.stdout.contains(&escaped), "{h:?}: {r:#?}");
    }
}
