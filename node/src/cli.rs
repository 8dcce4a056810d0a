//! The command line of the node's commands. The `goodwill` binary (in `goodwill-testnet`, which
//! adds the cluster commands) flattens [`Command`] into its own.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The wallet's keys: an encrypted keystore (new, list, import, export), and plain key files.
    Key(KeyArgs),
    /// Read an account through a node: its balance, or its transactions.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Build chain specs.
    #[command(subcommand, name = "chain-spec")]
    ChainSpec(ChainSpecCommand),
    /// Check a node's stored ledger.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Run a node.
    Node(NodeArgs),
    /// Run a light peer: no ledger; follows and checks headers, pushes transactions and reads
    /// accounts through main nodes, verifying each answer's Merkle proof.
    Light(LightArgs),
    /// Build, sign and submit a transaction to a node.
    Tx(TxArgs),
    /// Contracts: try one on a scratch state.
    #[command(subcommand)]
    Contract(ContractCommand),
}

/// Where `goodwill testnet` keeps its cluster unless told otherwise:
/// `$XDG_DATA_HOME/goodwill/testnet`, or `~/.local/share/goodwill/testnet`.
pub fn default_testnet_dir() -> PathBuf {
    data_dir().join("testnet")
}

/// Where a light peer keeps what it verified of `chain_id` unless told otherwise:
/// `$XDG_DATA_HOME/goodwill/light/CHAIN_ID`, or `~/.local/share/goodwill/light/CHAIN_ID`.
pub fn default_light_dir(chain_id: &str) -> PathBuf {
    data_dir().join("light").join(chain_id)
}

/// `$XDG_DATA_HOME/goodwill`, or `~/.local/share/goodwill`.
fn data_dir() -> PathBuf {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data.join("goodwill")
}

/// Arguments of `goodwill node`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// A TOML file with any of these flags as keys (`base-path = "..."`, `bootnode = [...]`),
    /// optionally under `[node]`; flags on the command line override it. Also GOODWILL_CONFIG.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// A one-node development chain in a temporary folder, forged by the insecure `dev` key.
    #[arg(long, conflicts_with_all = ["chain", "forger_key"])]
    pub dev: bool,
    /// The chain: a chain spec file, or `local` for the spec of the cluster `goodwill testnet up`
    /// runs (in `$GOODWILL_TESTNET_DIR`, default `~/.local/share/goodwill/testnet`), to join it.
    /// Without --dev, this or --genesis-hash is needed.
    #[arg(long)]
    pub chain: Option<PathBuf>,
    /// Join the network whose genesis block has this hash (`genesis_hash` in any of its nodes'
    /// `/api/v1/status`). Without --chain, the spec is asked of the bootnodes and kept only if
    /// it makes this genesis (saved as BASE/chain-spec.json); with --chain, the file must.
    #[arg(long, conflicts_with = "dev")]
    pub genesis_hash: Option<goodwill_ledger::Hash>,
    /// Where the node keeps its data (default with --dev: a temporary folder).
    #[arg(long)]
    pub base_path: Option<PathBuf>,
    /// Key file of the forger this node forges for.
    #[arg(long)]
    pub forger_key: Option<PathBuf>,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub network: NetworkArgs,
    /// This node's minimum fee in base units: it neither admits nor forges cheaper transactions
    /// (default: the chain's minimum; never below it).
    #[arg(long)]
    pub min_fee: Option<u64>,
    /// This node's minimum gas price for contract transactions, in base units per unit of gas:
    /// it neither admits nor forges calls offering less (default 1, the chain's).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub min_gas_price: u64,
    /// States (one per block height) kept below the last final block; older ones are removed as
    /// blocks become final, so the database grows with blocks, not with every state. At least
    /// two epochs' worth are kept whatever the value (the finality gadget reads them).
    #[arg(long, default_value_t = DEFAULT_STATE_KEEP, conflicts_with = "archive")]
    pub state_keep: u64,
    /// Keep the state of every height since genesis (an archive node): queries and proofs at
    /// any height, at the cost of a database that grows with every state.
    #[arg(long)]
    pub archive: bool,
    /// How a node with no database yet gets the chain: `full` replays every block from genesis;
    /// `state` follows proofs of finality to the last final block, downloads its state (checked
    /// against its state root) and syncs only the blocks after it (it then holds no block
    /// between genesis and that one).
    #[arg(long, value_enum, default_value_t = SyncMode::Full, conflicts_with = "archive")]
    pub sync: SyncMode,
}

/// How a new node gets the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SyncMode {
    /// Every block from genesis.
    Full,
    /// The last final block's state, then the blocks after it.
    State,
}

/// States kept below the final block by default: about half an hour of 2-second slots.
pub const DEFAULT_STATE_KEEP: u64 = 1_024;

#[cfg(feature = "node")]
impl NodeArgs {
    /// Which states the node keeps.
    pub fn pruning(&self) -> goodwill_ledger::StatePruning {
        match self.archive {
            true => goodwill_ledger::StatePruning::Archive,
            false => goodwill_ledger::StatePruning::Keep(self.state_keep),
        }
    }
}

/// Where a node or light peer meets its peers: shared by `goodwill node` and `goodwill light`.
#[derive(Debug, Args)]
pub struct NetworkArgs {
    /// Where to listen for peers (repeatable). A main node's default: every interface, TCP and
    /// QUIC on port 30333 (/ip4/0.0.0.0/tcp/30333, /ip4/0.0.0.0/udp/30333/quic-v1), or a free
    /// loopback port with --dev. A light peer listens nowhere unless told: it dials out.
    #[arg(long)]
    pub listen: Vec<libp2p::Multiaddr>,
    /// An address peers reach this node at, when it is not one it listens on: a public IP
    /// address or DNS name and the port a router forwards (repeatable), e.g.
    /// /dns4/node.example.org/tcp/30333. Advertised to peers and the DHT as given.
    #[arg(long = "public-addr")]
    pub public_addrs: Vec<libp2p::Multiaddr>,
    /// A peer to join through, as printed by its node: /ip4/.../tcp/.../p2p/<peer id>, or by
    /// name, /dns4/boot.example.org/tcp/30333/p2p/<peer id> (repeatable; added to the chain
    /// spec's bootnodes).
    #[arg(long = "bootnode")]
    pub bootnodes: Vec<libp2p::Multiaddr>,
    /// Discover peers on the local network with mDNS (off by default: it multicasts on your
    /// real network interface).
    #[arg(long)]
    pub mdns: bool,
}

/// Where the HTTP API listens: shared by `goodwill node` and `goodwill light`.
#[derive(Debug, Args)]
pub struct HttpArgs {
    /// Address of the HTTP API, loopback unless you choose otherwise (default 127.0.0.1:9933
    /// for a node, 127.0.0.1:9944 for a light peer, so both run on one machine).
    #[arg(long)]
    pub http: Option<std::net::SocketAddr>,
    /// Requests per second one HTTP client (an IP address; an IPv6 /64) may make, sustained;
    /// bursts of twice as many. Over it, or over --http-concurrency, a client is answered 429
    /// with Retry-After.
    #[arg(long, default_value_t = crate::http::limits::DEFAULT_RATE, value_parser = clap::value_parser!(u32).range(1..))]
    pub http_rate: u32,
    /// Requests one HTTP client may have in flight at once.
    #[arg(long, default_value_t = crate::http::limits::DEFAULT_CONCURRENCY)]
    pub http_concurrency: usize,
    /// Hold loopback clients to these limits too (they are exempt by default: the operator's
    /// own wallet, explorer and scripts).
    #[arg(long)]
    pub http_limit_loopback: bool,
}

impl HttpArgs {
    /// The address, or `default`.
    pub fn address_or(&self, default: std::net::SocketAddr) -> std::net::SocketAddr {
        self.http.unwrap_or(default)
    }

    /// The per-client limits.
    pub fn limits(&self) -> crate::http::limits::ClientLimits {
        crate::http::limits::ClientLimits {
            per_second: self.http_rate,
            concurrent: self.http_concurrency.max(1),
            limit_loopback: self.http_limit_loopback,
        }
    }
}

/// A node's HTTP API address unless told otherwise.
pub const DEFAULT_NODE_HTTP: std::net::SocketAddr =
    std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9933);
/// A light peer's.
pub const DEFAULT_LIGHT_HTTP: std::net::SocketAddr =
    std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9944);

/// Arguments of `goodwill light`.
#[derive(Debug, Args)]
pub struct LightArgs {
    /// A TOML file with any of these flags as keys, optionally under `[light]`; flags on the
    /// command line override it. Also GOODWILL_CONFIG.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The chain: a chain spec file, or `local` (the local cluster's); this or --genesis-hash.
    #[arg(long)]
    pub chain: Option<PathBuf>,
    /// Join the network whose genesis block has this hash: without --chain, its spec is asked
    /// of the bootnodes and kept only if it makes this genesis; with --chain, the file must.
    #[arg(long)]
    pub genesis_hash: Option<goodwill_ledger::Hash>,
    /// Where the last final block verified is kept, to start from next time (default:
    /// `~/.local/share/goodwill/light/CHAIN_ID`, under `$XDG_DATA_HOME` if set).
    #[arg(long)]
    pub base_path: Option<PathBuf>,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub network: NetworkArgs,
}

/// Arguments shared by every `goodwill tx` command.
#[derive(Debug, Args)]
pub struct TxArgs {
    #[command(flatten)]
    pub options: TxOptions,
    /// What to send.
    #[command(subcommand)]
    pub kind: TxKind,
}

/// How a transaction is signed and sent.
#[derive(Debug, Args)]
pub struct TxOptions {
    /// The signing key: a keystore address or name (unlocked with its passphrase), a plain key
    /// file, or `dev` / `dev2` (insecure, dev and local chains only).
    #[arg(long, global = true, default_value = "")]
    pub key: String,
    /// The keystore folder.
    #[arg(long, global = true, env = "GOODWILL_KEYSTORE", default_value_os_t = default_keystore_dir())]
    pub keystore: PathBuf,
    /// The node's HTTP API.
    #[arg(long, global = true, default_value = "http://127.0.0.1:9933")]
    pub node: String,
    /// Fee in base units (default: the node's chain minimum; for contracts, the gas limit at
    /// 1 base unit per gas, and at least that minimum).
    #[arg(long, global = true)]
    pub fee: Option<u64>,
    /// Wait until the transaction is in a block, and print where (and, for a contract, what it
    /// did).
    #[arg(long, global = true)]
    pub wait: bool,
    /// Wait until the block holding the transaction is final (two thirds of the forgers' weight
    /// voted for it or a descendant): no fork can revert it any more. Implies `--wait`.
    #[arg(long, global = true)]
    pub wait_final: bool,
}

/// Transaction kinds.
#[derive(Debug, Subcommand)]
pub enum TxKind {
    /// Send coins.
    Transfer {
        /// Recipient address (gw1...).
        #[arg(long)]
        to: String,
        /// Amount in base units (1 coin = 10^9).
        #[arg(long)]
        amount: u64,
    },
    /// Buy forging weight; the price goes to an eligible association.
    BuyTicket {
        /// The association (gw1...).
        #[arg(long)]
        association: String,
        /// Price and weight, in base units.
        #[arg(long)]
        price: u64,
        /// Epochs the ticket is active.
        #[arg(long, default_value_t = 10)]
        epochs: u32,
    },
    /// Register your key as a good-cause association.
    RegisterAssociation {
        /// Its name.
        #[arg(long)]
        name: String,
        /// Where its proof of identity is published (https).
        #[arg(long)]
        proof_url: String,
        /// BLAKE3 of that document (64 hex digits).
        #[arg(long)]
        document_hash: String,
    },
    /// Vote, as a forger with an active ticket, for a registered association.
    Vote {
        /// The association (gw1...).
        #[arg(long)]
        association: String,
    },
    /// Pay an address a fixed amount every so many slots, a number of times (a standing order).
    /// Each payment runs at the start of a block; one the balance cannot cover is skipped.
    Schedule {
        /// Recipient address (gw1...).
        #[arg(long)]
        to: String,
        /// Each payment, in base units.
        #[arg(long)]
        amount: u64,
        /// Slots between payments.
        #[arg(long)]
        every: u64,
        /// How many payments.
        #[arg(long)]
        times: u32,
    },
    /// End a schedule you made (its id is the id of the transaction that made it).
    CancelSchedule {
        /// The schedule's id (64 hex digits).
        #[arg(long)]
        schedule: String,
    },
    /// Report a forger that signed two different headers for one slot: it forfeits the forging
    /// weight of all its tickets.
    ReportEquivocation {
        /// One header: a `SignedBlockHeader` protobuf, hex-encoded.
        #[arg(long)]
        first: String,
        /// The other header, same forger and slot.
        #[arg(long)]
        second: String,
    },
    /// Report a forger that signed two conflicting finality votes (two in one round, or one
    /// whose span of rounds surrounds the other's; nodes log such pairs with their hex): it
    /// forfeits the forging weight of all its tickets.
    ReportVoteEquivocation {
        /// One vote: a `SignedVote` protobuf, hex-encoded.
        #[arg(long)]
        first: String,
        /// The other vote, by the same forger.
        #[arg(long)]
        second: String,
    },
}

/// `goodwill key [--keystore DIR] ...`
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// The keystore folder.
    #[arg(long, global = true, env = "GOODWILL_KEYSTORE", default_value_os_t = default_keystore_dir())]
    pub keystore: PathBuf,
    #[command(subcommand)]
    pub command: KeyCommand,
}

/// The keystore's default folder: `$XDG_DATA_HOME/goodwill/keystore`.
pub fn default_keystore_dir() -> PathBuf {
    default_testnet_dir().with_file_name("keystore")
}

/// `goodwill account ...`
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// An account's balance and nonce.
    Balance {
        /// The account's address.
        address: String,
        /// The node to ask (a main node or a light peer).
        #[arg(long, default_value = "http://127.0.0.1:9933")]
        node: String,
    },
    /// An account's committed transactions, newest first.
    History {
        /// The account's address.
        address: String,
        /// The node to ask.
        #[arg(long, default_value = "http://127.0.0.1:9933")]
        node: String,
        /// How many transactions to list (at most 100 per page; more pages are followed).
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

/// `goodwill contract ...`
#[derive(Debug, Subcommand)]
pub enum ContractCommand {
    /// Deploy a contract: sends a transaction that runs `init(*ARGS)`; prints its address.
    Deploy {
        /// The contract (a `.star` file).
        file: PathBuf,
        /// Arguments of `init`: a JSON array.
        #[arg(default_value = "[]")]
        args: String,
        /// Gas the deployment may use.
        #[arg(long, default_value_t = 1_000_000)]
        gas: u64,
        #[command(flatten)]
        options: TxOptions,
    },
    /// Call a contract's public function.
    Call {
        /// The contract's address.
        address: String,
        /// The function.
        function: String,
        /// Its arguments: a JSON array.
        #[arg(default_value = "[]")]
        args: String,
        /// Coins to attach, in base units.
        #[arg(long, default_value_t = 0)]
        value: u64,
        /// Gas the call may use.
        #[arg(long, default_value_t = 200_000)]
        gas: u64,
        #[command(flatten)]
        options: TxOptions,
    },
    /// Show a deployed contract: creator, balance, storage size and code; with KEY, one storage
    /// entry.
    Show {
        /// The contract's address.
        address: String,
        /// A storage key to read.
        key: Option<String>,
        /// The node's HTTP API.
        #[arg(long, default_value = "http://127.0.0.1:9933")]
        node: String,
    },
    /// Run a contract call against a scratch state kept in a file, outside any chain, and print
    /// the result, the gas used, the events, and what the call changed. `--deploy` starts a new
    /// state (running `init` with ARGS); later runs call FUNCTION on it.
    Run {
        /// The contract (a `.star` file).
        file: std::path::PathBuf,
        /// The function to call, then its arguments as a JSON array (with --deploy: only the
        /// arguments of `init`).
        #[arg(num_args = 0..=2)]
        call: Vec<String>,
        /// Deploy: a fresh state, then `init(*ARGS)` if the contract defines it.
        #[arg(long)]
        deploy: bool,
        /// The scratch state (default: FILE with `.state.json` appended).
        #[arg(long)]
        state: Option<std::path::PathBuf>,
        /// Who calls (an address, or a dev key name such as `alice`).
        #[arg(long, default_value = "alice")]
        caller: String,
        /// Coins attached to the call, in base units.
        #[arg(long, default_value_t = 0)]
        value: u64,
        /// Gas the call may use.
        #[arg(long, default_value_t = 1_000_000)]
        gas: u64,
        /// The block height the call sees (default: the state's, or 1).
        #[arg(long)]
        height: Option<u64>,
    },
}

/// `goodwill key ...`
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a key in the keystore, encrypted under a passphrase (asked twice on the terminal,
    /// or read from GOODWILL_PASSPHRASE_FILE / GOODWILL_PASSPHRASE), and print its address.
    New {
        /// A name to use in place of the address (in `--key NAME`).
        #[arg(long)]
        name: Option<String>,
    },
    /// List the keystore's addresses and names.
    List,
    /// Encrypt a plain key file (as `key generate --out` writes) into the keystore.
    Import {
        /// The key file.
        file: PathBuf,
        /// A name for it.
        #[arg(long)]
        name: Option<String>,
    },
    /// Decrypt a keystore key into a plain key file readable only by you.
    Export {
        /// Its address or name.
        key: String,
        /// Where to write it (refuses to overwrite).
        #[arg(long)]
        out: PathBuf,
    },
    /// Generate a new key. With --out, writes a key file readable only by you and prints the
    /// address; without, prints the key as JSON.
    Generate {
        /// Where to write the key file (refuses to overwrite an existing file).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the address of a key file.
    Inspect {
        /// The key file.
        file: PathBuf,
    },
}

/// Log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Built-in chain specs.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BuiltinChain {
    /// One node; the insecure `dev` key forges.
    Dev,
    /// A local cluster; well-known insecure forger keys `local-forger-0..N`.
    Local,
    /// A public network: a new key for every genesis forger, bootnode and the faucet, written
    /// into `--out`; no well-known key. Needs --name, --chain-id and --bootnode-host.
    Public,
}

/// `goodwill chain-spec ...`
#[derive(Debug, Subcommand)]
pub enum ChainSpecCommand {
    /// Print a chain spec as JSON, with genesis at the current time.
    Build(ChainSpecBuildArgs),
}

/// Arguments of `goodwill chain-spec build`.
#[derive(Debug, Args)]
pub struct ChainSpecBuildArgs {
    /// Which chain.
    #[arg(long, value_enum)]
    pub chain: BuiltinChain,
    /// Number of genesis forgers (local and public chains).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1_000))]
    pub forgers: u64,
    /// Write `DIR/spec.json` and a new private key file per genesis forger (`DIR/forger-N.key`)
    /// instead of printing a spec with the well-known insecure forger keys. A public chain
    /// needs it, and a new or empty folder.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The network's name, shown to users (public chain).
    #[arg(long)]
    pub name: Option<String>,
    /// The chain id bound into every signature, for example `goodwill-testnet-1` (public chain):
    /// a new id for every new network, so that no signature replays across them.
    #[arg(long)]
    pub chain_id: Option<String>,
    /// A bootnode's DNS name (or IP address), repeatable (public chain): a network key is made
    /// for each (`DIR/bootnode-N.network.key`, to copy to that node's base path as
    /// `network.key`) and its address `/dns4/HOST/tcp/PORT/p2p/ID` goes into the spec.
    #[arg(long = "bootnode-host")]
    pub bootnode_hosts: Vec<String>,
    /// The peer-to-peer port the bootnodes listen on.
    #[arg(long, default_value_t = 30333)]
    pub p2p_port: u16,
    /// Genesis, in seconds since the Unix epoch (`date -d '2027-01-15 12:00Z' +%s`): a public
    /// network's first slot is when its operators have started their nodes. Default: now.
    #[arg(long)]
    pub genesis_time: Option<u64>,
    /// Coins of the faucet account (public chain, `DIR/faucet.key`); 0 for none.
    #[arg(long, default_value_t = 1_000_000)]
    pub faucet_coins: u64,
    /// Coins each genesis forger holds besides its ticket (public chain), to buy more tickets.
    #[arg(long, default_value_t = 10_000)]
    pub forger_coins: u64,
    /// An association eligible from genesis, `NAME=ADDRESS`, repeatable (public chain): tickets
    /// pay eligible associations, so without one the forgers must vote one in first.
    #[arg(long = "association", value_name = "NAME=ADDRESS")]
    pub associations: Vec<String>,
    /// Slot length in milliseconds (default 2000). Short slots suit a local cluster; each slot
    /// still has to fit a block's import and the lottery's rank windows.
    #[arg(long, value_parser = clap::value_parser!(u64).range(200..))]
    pub slot_ms: Option<u64>,
    /// Slots in an epoch (default 30): rosters, lottery seeds and stored proofs of finality
    /// change per epoch.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub slots_per_epoch: Option<u64>,
}

/// `goodwill ledger ...`
#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Re-validate the stored chain from genesis: signatures, roots, every transaction and the
    /// final state. Prints the head, or the first bad block and why (exit code 1).
    Verify {
        /// The node's base path (its database is in `BASE/db`).
        #[arg(long)]
        base_path: PathBuf,
    },
}
