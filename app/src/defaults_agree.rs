//! The defaults can't drift: what `sandboxer serve --help` says, what the
//! README's configuration table says, what `config` resolves to with
//! nothing set, and the core's own defaults must all agree, flag by flag,
//! and name the same `SANDBOXER_*` variables.

use std::collections::BTreeMap;

use clap::CommandFactory;
use sandboxer_core::domain::{Policy, SandboxSpec};

use crate::config::{ServeSettings, resolve};
use crate::defaults;

/// What one flag's help or README row says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    env: Option<String>,
    default: Option<String>,
}

/// `--flag` -> its variable and `[default: ...]`, from the long help of
/// `sandboxer <subcommand>`.
fn help_of(subcommand: &str) -> BTreeMap<String, Row> {
    let mut cli = crate::Cli::command();
    let help = cli
        .find_subcommand_mut(subcommand)
        .unwrap_or_else(|| panic!("no subcommand {subcommand}"))
        .render_long_help()
        .to_string();
    let mut blocks: Vec<String> = Vec::new();
    for line in help.lines() {
        if line.trim_start().starts_with('-') {
            blocks.push(String::new());
        }
        if let Some(block) = blocks.last_mut() {
            block.push_str(line.trim());
            block.push(' ');
        }
    }
    blocks
        .iter()
        .filter_map(|block| {
            let flag = block
                .split([' ', ','])
                .find(|t| t.starts_with("--"))?
                .to_owned();
            let between = |open: &str, close: &[char]| {
                let rest = &block[block.find(open)? + open.len()..];
                Some(rest[..rest.find(close)?].to_owned())
            };
            let row = Row {
                // `[env: NAME=value]`, or `[env: NAME]` when values are hidden.
                env: between("[env: ", &['=', ']']),
                default: between("[default: ", &[']']),
            };
            Some((flag, row))
        })
        .filter(|(flag, _)| flag != "--help")
        .collect()
}

/// `--flag` -> its variable and default, from the README's configuration
/// table; a default not written as one code span (`none`, prose) is `None`.
fn readme() -> (BTreeMap<String, Row>, BTreeMap<String, Row>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    let text = std::fs::read_to_string(path).expect("the README");
    let table = text
        .split("## Configuration")
        .nth(1)
        .expect("a configuration section")
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2);
    let code = |cell: &str| {
        let cell = cell.trim();
        let inner = cell.strip_prefix('`')?.strip_suffix('`')?;
        (!inner.contains('`')).then(|| inner.to_owned())
    };
    let (mut serve, mut clients) = (BTreeMap::new(), BTreeMap::new());
    for line in table {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (var, flag, default) = (cells[1], cells[2], cells[3]);
        let row = Row {
            env: code(var),
            default: code(default),
        };
        let name = flag.split('`').nth(1).expect("a flag").to_owned();
        if flag.contains("(clients)") {
            clients.insert(name, row);
        } else {
            serve.insert(name, row);
        }
    }
    (serve, clients)
}

#[test]
fn serve_help_and_the_readme_table_agree_on_every_flag() {
    let help = help_of("serve");
    let (readme, clients) = readme();
    assert_eq!(
        help.keys().collect::<Vec<_>>(),
        readme.keys().collect::<Vec<_>>(),
        "flags of `serve --help` and of the README table"
    );
    for (flag, row) in &help {
        assert_eq!(Some(row), readme.get(flag), "{flag}: help vs README");
    }
    let ls = help_of("ls");
    for (flag, row) in &clients {
        assert_eq!(Some(row), ls.get(flag), "{flag}: `ls --help` vs README");
    }
    assert_eq!(ls["--url"].default.as_deref(), Some(defaults::URL));
    assert_eq!(defaults::URL, format!("http://{}", defaults::LISTEN));
}

#[test]
fn serve_help_shows_what_the_config_resolves_to_with_nothing_set() {
    let c = resolve(ServeSettings::default(), ServeSettings::default()).unwrap();
    let mib = 1024 * 1024;
    #[allow(clippy::cast_precision_loss)]
    let cpus = c.nano_cpus as f64 / 1e9;
    let resolved: BTreeMap<&str, String> = [
        ("--listen", c.listen.to_string()),
        ("--database", c.database.clone()),
        ("--image", c.image.clone()),
        ("--runtime", c.runtime.clone()),
        ("--ttl-seconds", c.ttl.as_secs().to_string()),
        (
            "--max-lifetime-seconds",
            c.max_lifetime.as_secs().to_string(),
        ),
        ("--retention-seconds", c.retention.as_secs().to_string()),
        ("--max-hibernated", c.max_hibernated.to_string()),
        ("--warm-pool-size", c.warm_pool_size.to_string()),
        (
            "--warm-pool-max-age-seconds",
            c.warm_pool_max_age.as_secs().to_string(),
        ),
        (
            "--cleanup-interval-seconds",
            c.cleanup_interval.as_secs().to_string(),
        ),
        // Not kept in the config: resolving refuses a remote address
        // without a token unless it is set.
        (
            "--allow-remote-without-token",
            defaults::ALLOW_REMOTE_WITHOUT_TOKEN.to_string(),
        ),
        ("--memory-mb", (c.memory_bytes / mib).to_string()),
        ("--cpus", format!("{cpus:?}")),
        ("--pids-limit", c.pids_limit.to_string()),
        ("--tmp-mb", (c.tmp_bytes / mib).to_string()),
        ("--user", c.user.clone()),
        ("--network", c.network.clone()),
        ("--max-file-bytes", c.max_file_bytes.to_string()),
        ("--exec-output-bytes", c.exec_output_bytes.to_string()),
        ("--max-processes", c.max_processes.to_string()),
        ("--process-buffer-bytes", c.process_buffer_bytes.to_string()),
        (
            "--orphan-grace-seconds",
            c.orphan_grace.as_secs().to_string(),
        ),
        ("--cleanup-concurrency", c.cleanup_concurrency.to_string()),
        (
            "--docker-timeout-seconds",
            c.docker_timeout.as_secs().to_string(),
        ),
        ("--prepare-image", c.prepare_image.to_string()),
        ("--log-format", defaults::log_format()),
    ]
    .into();
    let help = help_of("serve");
    for (flag, row) in &help {
        assert_eq!(
            row.default.as_deref(),
            resolved.get(flag.as_str()).map(String::as_str),
            "{flag}: help vs resolved config"
        );
    }
    assert_eq!(
        (&c.token, &c.otlp_endpoint, &c.instance),
        (&None, &None, &None)
    );
    assert_eq!(
        resolved.len(),
        help.values().filter(|r| r.default.is_some()).count()
    );
    assert_eq!(c.log_format, defaults::LOG_FORMAT);
}

#[test]
fn the_binarys_defaults_are_the_cores() {
    let c = resolve(ServeSettings::default(), ServeSettings::default()).unwrap();
    assert_eq!(
        c.sandbox_defaults(),
        SandboxSpec::with_defaults(defaults::IMAGE)
    );
    assert_eq!(c.policy().unwrap(), Policy::default());
    assert_eq!(
        c.exec_output_bytes,
        sandboxer_core::domain::exec::DEFAULT_OUTPUT_LIMIT
    );
    let processes = sandboxer_core::usecase::ProcessSettings::default().limits;
    assert_eq!(
        (c.max_processes, c.process_buffer_bytes),
        (processes.max_running, processes.buffer_bytes)
    );
}
