// The Goodwill explorer: hash-routed pages over the node's public API. Everything shown is
// built with DOM nodes and textContent, never HTML strings: names and URLs on the ledger are
// written by anyone.
"use strict";

const API = "/api/v1";
const COIN = 1000000000n;
const view = document.getElementById("view");
const statusLine = document.getElementById("status");
// The live page shown (one that is redrawn when the head moves), if any.
let livePage = null;

// --- small helpers ---------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "onclick") node.addEventListener("click", value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  for (const child of children.flat()) node.append(child instanceof Node ? child : String(child));
  return node;
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(path) {
  const response = await fetch(API + path);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = body.error || {};
    throw new ApiError(response.status, error.code || "http", error.message || response.statusText);
  }
  return body;
}

// Base units (a decimal string) as coins, without trailing zeros.
function coins(units) {
  const value = BigInt(units);
  const whole = value / COIN;
  const fraction = (value % COIN).toString().padStart(9, "0").replace(/0+$/, "");
  return (fraction ? `${whole}.${fraction}` : `${whole}`) + " GW";
}

function cpuPerTransaction(resources) {
  if (!resources || !resources.committed_transactions) return "–";
  const ms = resources.cpu_seconds_per_committed_transaction * 1000;
  return ms >= 1 ? `${ms.toFixed(1)} ms` : `${(ms * 1000).toFixed(0)} µs`;
}

function short(text) {
  return text.length > 16 ? `${text.slice(0, 10)}…${text.slice(-6)}` : text;
}

function percent(basisPoints) {
  return `${(basisPoints / 100).toFixed(2)} %`;
}

function age(ms) {
  const seconds = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  return new Date(ms).toLocaleString();
}

const link = {
  block: (id, text) => h("a", { href: `#/block/${id}`, class: "mono", "data-kind": "block" }, text ?? short(String(id))),
  tx: (id) => h("a", { href: `#/tx/${id}`, class: "mono", "data-kind": "tx" }, short(id)),
  account: (address) => h("a", { href: `#/account/${address}`, class: "mono", "data-kind": "account" }, short(address)),
  contract: (address) => h("a", { href: `#/contract/${address}`, class: "mono", "data-kind": "contract" }, short(address)),
};

function fields(rows) {
  return h("table", { class: "fields" },
    rows.filter(Boolean).map(([name, value]) => h("tr", {}, h("th", {}, name), h("td", {}, value))));
}

function table(headings, rows, attrs) {
  return h("table", attrs || {},
    h("thead", {}, h("tr", {}, headings.map((x) => h("th", {}, x)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c) => h("td", {}, c))))));
}

function badge(yes, text) {
  return h("span", { class: yes ? "badge" : "badge no" }, text);
}

// A bar chart: bars of `values` (0..max), labels under the first and last bar.
function barChart(title, values, labels, max, format) {
  const width = 720, height = 180, pad = 28, left = 48;
  const step = (width - left - pad) / Math.max(values.length, 1);
  const top = max || Math.max(1, ...values);
  const bars = values.map((value, i) => {
    const barHeight = ((height - 2 * pad) * value) / top;
    return svg("rect", {
      class: "bar", x: left + i * step + 1, y: height - pad - barHeight,
      width: Math.max(step - 2, 1), height: barHeight,
    }, svg("title", {}, `${labels[i]}: ${format(value)}`));
  });
  return svg("svg", { class: "plot", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title },
    svg("text", { x: left, y: 16 }, title),
    svg("line", { x1: left, y1: height - pad, x2: width - pad, y2: height - pad, stroke: "#ccc" }),
    svg("text", { x: 2, y: pad + 4 }, format(top)),
    bars,
    labels.length ? svg("text", { x: left, y: height - 8 }, labels[0]) : null,
    labels.length > 1 ? svg("text", { x: width - pad, y: height - 8, "text-anchor": "end" }, labels[labels.length - 1]) : null);
}

// A horizontal bar chart of named amounts.
function amountChart(title, entries) {
  const width = 720, row = 26, pad = 8, labelWidth = 220;
  const height = 30 + entries.length * row;
  const top = entries.reduce((m, e) => (e.value > m ? e.value : m), 1n);
  const rows = entries.map((entry, i) => {
    const y = 24 + i * row;
    const barWidth = Number((BigInt(width - labelWidth - 130) * entry.value) / top);
    return [
      svg("text", { x: pad, y: y + 14 }, entry.label.slice(0, 32)),
      svg("rect", { class: "bar", x: labelWidth, y: y + 3, width: Math.max(barWidth, 1), height: row - 8 }),
      svg("text", { x: labelWidth + barWidth + 6, y: y + 14 }, coins(entry.value.toString())),
    ];
  });
  return svg("svg", { class: "plot", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title },
    svg("text", { x: pad, y: 16 }, title), rows);
}

// --- pages ---------------------------------------------------------------------------------

async function home() {
  const [status, page] = await Promise.all([api("/status"), api("/blocks?limit=100")]);
  const latest = page.blocks.slice(0, 20);
  // Blocks per slot: the last 100 blocks' slots, in buckets of ten slots.
  const blocks = page.blocks.filter((b) => b.height > 0);
  const values = [], labels = [];
  if (blocks.length) {
    const first = blocks[blocks.length - 1].slot, last = blocks[0].slot;
    for (let start = first; start <= last; start += 10) {
      const end = Math.min(start + 9, last);
      const count = blocks.filter((b) => b.slot >= start && b.slot <= end).length;
      values.push(count / (end - start + 1));
      labels.push(`slots ${start}–${end}`);
    }
  }
  return [
    h("h1", {}, `Chain ${status.chain_id}`),
    h("div", { class: "cards" },
      h("div", { class: "card" }, "Head", h("b", { id: "head-height" }, `#${status.head.height}`)),
      h("div", { class: "card", title: "The last block two thirds of the forgers' weight made final, and how many blocks the head is ahead of it" },
        "Final", h("b", { id: "final-height" }, `#${status.finalized.height}`), finalityLag(status.finalized.lag)),
      h("div", { class: "card" }, "Slot", h("b", {}, status.slot)),
      h("div", { class: "card" }, "Epoch", h("b", {}, status.epoch)),
      h("div", { class: "card" }, "Peers", h("b", {}, status.peers)),
      h("div", { class: "card" }, "Pending", h("b", {}, status.pending_transactions)),
      h("div", { class: "card", title: "CPU time this node used per transaction it committed since it started" },
        "CPU per transaction", h("b", { id: "cpu-per-tx" }, cpuPerTransaction(status.resources)))),
    h("h2", {}, "Blocks per slot"),
    values.length ? barChart("share of slots that got a block, per ten slots", values, labels, 1, (v) => `${Math.round(v * 100)} %`)
      : h("p", { class: "muted" }, "No blocks yet."),
    h("h2", {}, "Latest blocks"),
    table(["Height", "Hash", "Forger", "Rank", "Transactions", "Time"],
      latest.map((b) => [link.block(b.height, `#${b.height}`), link.block(b.hash), link.account(b.forger),
        b.rank, b.transaction_count, age(b.timestamp_ms)]), { id: "latest-blocks" }),
  ];
}

// How far finality trails the head: a few blocks when two thirds of the weight vote, growing
// while they do not (the chain goes on; finality waits).
function finalityLag(lag) {
  return h("span", { class: lag > 10 ? "error" : "muted", id: "final-lag" }, ` ${lag} behind the head`);
}

async function block(id) {
  const b = await api(`/blocks/${encodeURIComponent(id)}`);
  return [
    h("h1", {}, `Block #${b.height}`),
    fields([
      ["Hash", h("code", {}, b.hash)],
      ["On this node's chain", badge(b.canonical, b.canonical ? "yes" : "no (a side branch)")],
      ["Final", badge(b.final, b.final ? "yes (no fork can revert it)" : "not yet")],
      ["Parent", b.height > 0 ? link.block(b.parent_hash) : "none (genesis)"],
      ["Next", b.next_hash ? link.block(b.next_hash) : "none yet"],
      ["Slot", b.slot],
      ["Time", `${new Date(b.timestamp_ms).toISOString()} (${age(b.timestamp_ms)})`],
      ["Forger", link.account(b.forger)],
      ["Lottery rank", `${b.rank}${b.rank === 0 ? " (primary winner)" : " (fallback)"}`],
      ["Fees", coins(b.fees)],
      ["Size", `${b.size} bytes`],
      ["State root", h("code", {}, b.state_root)],
      ["Receipts root", h("code", {}, b.receipts_root)],
      ["Transactions root", h("code", {}, b.transactions_root)],
    ]),
    h("h2", {}, `Transactions (${b.transactions.length})`),
    b.transactions.length
      ? table(["#", "Id", "Kind", "Sender", "Fee"],
        b.transactions.map((t) => [t.index, link.tx(t.id), t.kind, link.account(t.sender), coins(t.fee)]),
        { id: "block-transactions" })
      : h("p", { class: "muted" }, "No transactions."),
  ];
}

function payloadRows(t) {
  const p = t.payload || {};
  switch (t.kind) {
    case "transfer": return [["To", link.account(p.to)], ["Amount", coins(p.amount)]];
    case "buy_ticket": return [["Association", link.account(p.association)], ["Price", coins(p.price)],
      ["Epochs", p.epochs]];
    case "register_association": return [["Name", p.name], ["Proof of identity", p.proof_url],
      ["Document hash", h("code", {}, p.document_hash)]];
    case "vote_association": return [["Association", link.account(p.association)]];
    case "report_equivocation": return [["Offender", link.account(p.first.forger)], ["Slot", p.first.slot],
      ["Headers", h("span", {}, h("code", {}, p.first.hash), " and ", h("code", {}, p.second.hash))]];
    case "deploy_contract": return [["Contract", link.contract(p.contract)], ["Arguments", h("code", {}, p.args)],
      ["Gas limit", p.gas_limit]];
    case "call_contract": return [["Contract", link.contract(p.contract)], ["Function", h("code", {}, p.function)],
      ["Arguments", h("code", {}, p.args)], ["Attached", coins(p.value)], ["Gas limit", p.gas_limit]];
    case "schedule_payment": return [["To", link.account(p.to)], ["Each payment", coins(p.amount)],
      ["Every", `${p.every_slots} slots`], ["Times", p.times]];
    case "cancel_schedule": return [["Schedule", h("code", {}, p.schedule)]];
    default: return [];
  }
}

async function transaction(id) {
  const t = await api(`/transactions/${encodeURIComponent(id)}`);
  return [
    h("h1", {}, `Transaction (${t.kind.replace(/_/g, " ")})`),
    fields([
      ["Id", h("code", {}, t.id)],
      ["Status", t.status === "committed"
        ? h("span", {}, badge(true, "committed"), " in block ", link.block(t.block.height, `#${t.block.height}`),
          ` at index ${t.block.index}`)
        : badge(false, "pending in the pool")],
      ["Sender", link.account(t.sender)],
      ["Nonce", t.nonce],
      ["Fee", coins(t.fee)],
      ...payloadRows(t),
      ...receiptRows(t.receipt),
      ["Size", `${t.size} bytes`],
      ["Chain", t.chain_id],
    ]),
    ...eventList(t.receipt),
  ];
}

// What a committed contract transaction did: gas, fee charged, result or error.
function receiptRows(receipt) {
  if (!receipt) return [];
  const rows = [["Fee charged", coins(receipt.fee_paid)]];
  const c = receipt.contract;
  if (!c) return rows;
  rows.push(["Gas used", h("span", { id: "receipt-gas" }, String(c.gas_used))]);
  rows.push(c.succeeded
    ? ["Result", h("code", { id: "receipt-result" }, JSON.stringify(c.result))]
    : ["Failed", h("span", { id: "receipt-error" }, badge(false, "failed"), " ", c.error)]);
  return rows;
}

function eventList(receipt) {
  const events = receipt && receipt.contract ? receipt.contract.events : [];
  if (!events.length) return [];
  return [h("h2", {}, "Events"),
    table(["Name", "Data"], events.map((e) => [e.name, h("code", {}, JSON.stringify(e.data))]), { id: "receipt-events" })];
}

async function contract(address) {
  const c = await api(`/contracts/${address}`);
  return [
    h("h1", {}, "Contract"),
    fields([
      ["Address", h("code", { id: "contract-address" }, c.address)],
      ["Creator", link.account(c.creator)],
      ["Deployed in", link.block(c.deployed_height, `#${c.deployed_height}`)],
      ["Balance", coins(c.balance)],
      ["Storage entries", h("span", { id: "contract-entries" }, String(c.storage_entries))],
      ["Calls", h("a", { href: `#/account/${c.address}` }, "its transactions")],
    ]),
    h("h2", {}, "Storage"),
    storageReader(c.address),
    h("h2", {}, "Code"),
    h("pre", { id: "contract-code" }, c.code),
  ];
}

// Reads one storage entry by key. Entries are leaves of the state tree under hashed keys, so
// they are looked up, not listed; the code says which keys a contract writes.
function storageReader(address) {
  const input = h("input", { id: "storage-key", placeholder: "a storage key, such as one the code writes", autocomplete: "off" });
  const answer = h("div", { id: "storage-answer" });
  const form = h("form", { id: "storage-form" }, input, h("button", { type: "submit" }, "Read"), answer);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const entry = await api(`/contracts/${address}/storage/${encodeURIComponent(input.value)}`);
      answer.replaceChildren(h("pre", { id: "storage-value" }, JSON.stringify(entry.value, null, 2)));
    } catch (error) {
      answer.replaceChildren(h("p", { class: "error", id: "storage-error" }, error.message));
    }
  });
  return form;
}

async function schedules() {
  const s = await api("/schedules");
  return [
    h("h1", {}, `Scheduled payments: ${s.schedules.length} active`),
    h("p", { class: "muted" }, `Due payments run at the start of a block, by due slot then id; one the owner ` +
      `cannot cover is skipped. The chain holds at most ${s.max_schedules}. Current slot: ${s.slot}.`),
    table(["Id", "Owner", "To", "Each", "Every", "Next slot", "Left", "Paid", "Skipped"],
      s.schedules.map((x) => [link.tx(x.id), link.account(x.owner), link.account(x.to), coins(x.amount),
        `${x.every_slots} slots`, x.next_slot, x.remaining, x.paid, x.skipped]), { id: "schedules" }),
  ];
}

async function account(address, cursor) {
  const query = cursor ? `?limit=20&cursor=${encodeURIComponent(cursor)}` : "?limit=20";
  const isContract = api(`/contracts/${address}`).then(() => true, (error) => {
    if (error.status === 404) return false;
    throw error;
  });
  const [a, history, contractHere] = await Promise.all([api(`/accounts/${address}`),
    api(`/accounts/${address}/transactions${query}`), isContract]);
  const rows = history.transactions.map((t) => {
    const direction = t.sender === address ? "out" : "in";
    const amount = t.payload && (t.payload.amount || t.payload.price);
    return [link.tx(t.id), t.kind, direction, amount ? coins(amount) : "", link.block(t.block.height, `#${t.block.height}`)];
  });
  return [
    h("h1", {}, "Account"),
    fields([
      ["Address", h("code", { id: "account-address" }, a.address)],
      ["Balance", h("span", { id: "account-balance" }, coins(a.balance))],
      ["Nonce", a.nonce],
      ["Pending transactions", a.pending_transactions],
      ["Forger", a.is_forger ? h("a", { href: `#/forger/${address}` }, "yes: tickets and blocks") : "no"],
      ["Association", a.is_association ? h("a", { href: `#/associations` }, "yes") : "no"],
      contractHere ? ["Contract", h("a", { href: `#/contract/${address}`, id: "account-contract" }, "yes: code and storage")] : null,
    ]),
    h("h2", {}, "Transactions"),
    rows.length ? table(["Id", "Kind", "Direction", "Amount", "Block"], rows, { id: "account-transactions" })
      : h("p", { class: "muted" }, cursor ? "No older transactions." : "No transactions yet."),
    history.next_cursor ? h("p", {}, h("a", { href: `#/account/${address}/${history.next_cursor}` }, "Older →")) : null,
  ];
}

async function forgers() {
  const f = await api("/forgers?window=100");
  return [
    h("h1", {}, `Forgers in epoch ${f.epoch}`),
    h("p", { class: "muted" }, `${f.active_forgers} with active tickets; the last ${f.window.blocks} blocks filled ` +
      `${f.window.blocks} of ${f.window.slots} slots.`),
    table(["Address", "Weight", "Share of weight", "Blocks (last window)", "Share of blocks", "Blocks forged", "Tickets"],
      f.forgers.map((x) => [h("a", { href: `#/forger/${x.address}`, class: "mono" }, short(x.address)),
        coins(x.weight), percent(x.share_of_weight_basis_points), x.blocks_in_window,
        percent(x.share_of_window_basis_points), x.blocks_forged, x.tickets.length]), { id: "forgers" }),
    h("h2", {}, "Recent lottery winners"),
    table(["Height", "Slot", "Forger", "Rank"],
      f.recent_winners.map((w) => [link.block(w.height, `#${w.height}`), w.slot, link.account(w.forger), w.rank])),
  ];
}

async function forger(address) {
  const f = await api(`/forgers/${address}`);
  return [
    h("h1", {}, "Forger"),
    fields([["Address", link.account(f.address)], ["Weight this epoch", coins(f.weight)],
      ["Blocks forged", f.blocks_forged], ["Epoch", f.epoch]]),
    h("h2", {}, "Tickets"),
    table(["Weight", "First epoch", "Last epoch", "Status"],
      f.tickets.map((t) => [coins(t.weight), t.first_epoch, t.last_epoch, badge(t.status === "active", t.status)])),
  ];
}

async function associations() {
  const a = await api("/associations");
  const chart = a.associations.filter((x) => BigInt(x.received) > 0n)
    .map((x) => ({ label: x.name, value: BigInt(x.received) }));
  return [
    h("h1", {}, "Associations"),
    h("p", { class: "muted" }, `Ticket money goes to eligible associations. A registered association becomes ` +
      `eligible when forgers holding ${percent(a.eligibility_basis_points)} of the active ticket weight vote for it, ` +
      `within ${a.vote_window_epochs} epochs.`),
    chart.length ? amountChart("donations received", chart) : null,
    table(["Name", "Address", "Eligible", "Votes", "Support", "Received", "Proof of identity"],
      a.associations.map((x) => [x.name, link.account(x.address), badge(x.eligible, x.eligible ? "eligible" : "voting"),
        x.votes, percent(x.support_basis_points), coins(x.received), x.proof_url]), { id: "associations" }),
  ];
}

async function mempool() {
  const m = await api("/mempool?limit=100");
  return [
    h("h1", {}, `Pool: ${m.count} pending`),
    h("p", { class: "muted" }, `${m.bytes} bytes; this node's minimum fee is ${coins(m.min_fee)}.`),
    table(["Id", "Kind", "Sender", "Nonce", "Fee"],
      m.transactions.map((t) => [link.tx(t.id), t.kind, link.account(t.sender), t.nonce, coins(t.fee)])),
  ];
}

// Where a search goes: a height, an address, or a hash (a transaction first, then a block).
async function search(text) {
  const q = text.trim();
  if (/^\d+$/.test(q)) return `#/block/${q}`;
  if (/^gw1[0-9a-z]+$/.test(q)) return `#/account/${q}`;
  if (/^[0-9a-fA-F]{64}$/.test(q)) {
    try {
      await api(`/transactions/${q}`);
      return `#/tx/${q}`;
    } catch (error) {
      if (error.status !== 404) throw error;
      return `#/block/${q}`;
    }
  }
  throw new ApiError(400, "bad_search", `“${q}” is not a height, a 64-digit hash or a gw1 address`);
}

// --- routing -------------------------------------------------------------------------------

const routes = [
  [/^#?\/?$/, () => home(), true],
  [/^#\/block\/([^/]+)$/, (m) => block(decodeURIComponent(m[1]))],
  [/^#\/tx\/([^/]+)$/, (m) => transaction(m[1])],
  [/^#\/account\/([^/]+)(?:\/([^/]+))?$/, (m) => account(m[1], m[2])],
  [/^#\/forgers$/, () => forgers(), true],
  [/^#\/forger\/([^/]+)$/, (m) => forger(m[1])],
  [/^#\/associations$/, () => associations(), true],
  [/^#\/mempool$/, () => mempool(), true],
  [/^#\/contract\/([^/]+)$/, (m) => contract(m[1])],
  [/^#\/schedules$/, () => schedules(), true],
];

async function render() {
  livePage = null;
  const hash = location.hash;
  const route = routes.find(([pattern]) => pattern.test(hash));
  try {
    if (!route) throw new ApiError(404, "no_page", `There is no page ${hash}.`);
    const content = await route[1](hash.match(route[0]));
    if (location.hash !== hash) return;
    view.replaceChildren(...content.filter(Boolean));
    view.dataset.page = hash || "#/";
    // Live pages follow the chain: they are redrawn when the head moves.
    if (route[2]) livePage = hash;
  } catch (error) {
    view.replaceChildren(h("h1", {}, error.status === 404 ? "Not found" : "Error"),
      h("p", { class: "error", id: "error" }, error.message));
    view.dataset.page = hash;
  }
}

let lastHead = null;

// The node pushes each new head (server-sent events, /api/v1/events): the status line and the
// live page are redrawn then, and never polled. EventSource reconnects by itself if the node
// goes away.
function followHeads() {
  const events = new EventSource(`${API}/events`);
  events.addEventListener("head", async (event) => {
    const head = JSON.parse(event.data);
    if (head.hash === lastHead) return;
    lastHead = head.hash;
    try {
      showStatus(await api("/status"));
    } catch (error) {
      statusLine.textContent = `node unreachable: ${error.message}`;
    }
    if (livePage !== null && location.hash === livePage) render();
  });
  events.addEventListener("error", () => {
    statusLine.textContent = "node unreachable; reconnecting";
  });
}

function showStatus(status) {
  const sync = status.sync && status.sync.state ? `, ${status.sync.state}` : "";
  statusLine.textContent = `${status.chain_id}: head #${status.head.height} (slot ${status.head.slot}), ` +
    `final #${status.finalized.height}, ${status.peers} peers${sync}`;
}

document.getElementById("search").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = document.getElementById("search-input");
  try {
    location.hash = await search(input.value);
  } catch (error) {
    view.replaceChildren(h("h1", {}, "Nothing found"), h("p", { class: "error", id: "error" }, error.message));
  }
});

window.addEventListener("hashchange", render);
api("/status").then((status) => { lastHead = status.head.hash; showStatus(status); }).catch(() => {});
render();
followHeads();
