//! The wallet from the command line against a dev node: a key made in the encrypted keystore
//! receives coins and spends them by name; a wrong passphrase spends nothing; `account balance`
//! and `account history` show what happened; a key exported and imported into another keystore
//! is the same key.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::Path;
use std::process::{Command, Output};

use common::{GOODWILL, Node};
use goodwill_ledger::COIN;

/// Runs `goodwill ARGS` with the keystore in `keystore` and the passphrase in `passphrase_file`.
fn goodwill(keystore: &Path, passphrase_file: &Path, args: &[&str]) -> Output {
    Command::new(GOODWILL)
        .args(args)
        .env("GOODWILL_KEYSTORE", keystore)
        .env("GOODWILL_PASSPHRASE_FILE", passphrase_file)
        .env_remove("GOODWILL_PASSPHRASE")
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_keystore_key_receives_and_spends_and_a_wrong_passphrase_spends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("node"));
    let keystore = dir.path().join("keystore");
    let right = dir.path().join("right");
    let wrong = dir.path().join("wrong");
    std::fs::write(&right, "correct horse battery staple\n").unwrap();
    std::fs::write(&wrong, "incorrect\n").unwrap();

    let address = stdout(&goodwill(&keystore, &right, &["key", "new", "--name", "alice"])).trim().to_string();
    let listed = stdout(&goodwill(&keystore, &right, &["key", "list"]));
    assert_eq!(listed.trim(), format!("{address}  alice"));
    let file = std::fs::read_to_string(keystore.join(format!("{address}.json"))).unwrap();
    assert!(file.contains("argon2id") && file.contains("xchacha20poly1305"), "{file}");

    node.tx(&["transfer", "--key", "dev", "--to", &address, "--amount", &(5 * COIN).to_string()]);
    let recipient = goodwill_ledger::Keypair::insecure_dev("dev2").address().to_string();
    let spend = |passphrase: &Path| {
        goodwill(
            &keystore,
            passphrase,
            &[
                "tx",
                "transfer",
                "--key",
                "alice",
                "--to",
                &recipient,
                "--amount",
                &COIN.to_string(),
                "--node",
                &node.url,
                "--wait",
            ],
        )
    };

    // A wrong passphrase: refused with a reason, nothing sent.
    let refused = spend(&wrong);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("wrong passphrase"), "{refused:?}");
    assert_eq!(node.get(&format!("/api/v1/accounts/{address}"))["nonce"], 0);

    // The right one: signed by the keystore's key, committed.
    assert!(stdout(&spend(&right)).contains("included in block #"));
    let fee = goodwill_ledger::ChainParams::default().min_fee.0;
    let balance =
        stdout(&goodwill(&keystore, &right, &["account", "balance", &address, "--node", &node.url]));
    assert!(balance.contains(&format!("({} base units)", 4 * COIN - fee)), "{balance}");
    assert!(balance.contains("nonce    1"), "{balance}");
    let history =
        stdout(&goodwill(&keystore, &right, &["account", "history", &address, "--node", &node.url]));
    let lines: Vec<&str> = history.lines().collect();
    assert_eq!(lines.len(), 2, "{history}");
    assert!(lines[0].contains(" out transfer") && lines[0].contains("1 GW"), "{history}");
    assert!(lines[1].contains(" in  transfer") && lines[1].contains("5 GW"), "{history}");

    // Export to a plain file, import into another keystore: the same address.
    let exported = dir.path().join("alice.key");
    let out = stdout(&goodwill(
        &keystore,
        &right,
        &["key", "export", "alice", "--out", exported.to_str().unwrap()],
    ));
    assert_eq!(out.trim(), address);
    let other = dir.path().join("other-keystore");
    let imported = stdout(&goodwill(&other, &right, &["key", "import", exported.to_str().unwrap()]));
    assert_eq!(imported.trim(), address);
    assert!(stdout(&goodwill(&other, &right, &["key", "list"])).starts_with(&address));

    // A report of equivocation needs two real headers: garbage is explained before anything is sent.
    let garbage = goodwill(
        &keystore,
        &right,
        &[
            "tx",
            "report-equivocation",
            "--key",
            "alice",
            "--first",
            "zz",
            "--second",
            "00",
            "--node",
            &node.url,
        ],
    );
    assert!(!garbage.status.success());
    assert!(String::from_utf8_lossy(&garbage.stderr).contains("--first must be hexadecimal"), "{garbage:?}");
    assert_eq!(node.get(&format!("/api/v1/accounts/{address}"))["nonce"], 1);
}
