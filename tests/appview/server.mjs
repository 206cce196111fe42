#!/usr/bin/env node
// A real atproto network with a Bluesky AppView for bridge's tests, on loopback only:
// a PLC directory, a PDS, the AppView (@atproto/bsky: its dataplane on PostgreSQL, the
// firehose indexer, the API) and bsync, assembled from @atproto/dev-env's parts.
//
// Not dev-env's TestNetwork itself: that also starts Ozone (moderation) and demands a Redis
// server, neither of which the thread queries need, and Debian has no Redis on these machines.
//
// Usage: node server.mjs --db-url postgres://user@127.0.0.1:PORT/db [--db-schema NAME]
//   --db-url URL      PostgreSQL for the AppView and bsync (BRIDGE_APPVIEW_DB_URL); required
//   --db-schema NAME  schema prefix (BRIDGE_APPVIEW_DB_SCHEMA); default "bridge"
//
// stdout carries only JSON lines: {"event":"ready",...} once every server listens, then one
// answer per command. Commands, one per line on stdin: "sync" (wait until the AppView has
// indexed everything the PDS has sequenced), "ping". EOF on stdin, SIGTERM or SIGINT: stop
// everything and exit 0. Diagnostics go to stderr. Temporary files go under $TMPDIR.

import net from 'node:net'
import readline from 'node:readline'

const HOST = '127.0.0.1'

// Every dev-env server calls listen(port) (all interfaces): bind them to loopback instead.
// Clients reach them as "localhost"; node tries each address of a name, so 127.0.0.1 answers.
const originalListen = net.Server.prototype.listen
net.Server.prototype.listen = function listen(...args) {
  if (typeof args[0] === 'number' && typeof args[1] !== 'string') args.splice(1, 0, HOST)
  else if (args[0] && typeof args[0] === 'object' && args[0].port !== undefined && !args[0].host) {
    args[0] = { ...args[0], host: HOST }
  }
  return originalListen.apply(this, args)
}

const { TestPlc, TestPds, TestBsky, TestBsync, mockNetworkUtilities } = await import('@atproto/dev-env')

function die(msg) {
  process.stderr.write(`server.mjs: ${msg}\n`)
  process.exit(2)
}
function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

function parseOptions(argv, env) {
  const opts = {
    dbUrl: env.BRIDGE_APPVIEW_DB_URL || null,
    dbSchema: env.BRIDGE_APPVIEW_DB_SCHEMA || 'bridge',
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const val = () => (i + 1 < argv.length ? argv[++i] : die(`option ${a} needs a value`))
    if (a === '--db-url') opts.dbUrl = val()
    else if (a === '--db-schema') opts.dbSchema = val()
    else die(`unknown argument: ${a}`)
  }
  if (!opts.dbUrl) die('--db-url (or BRIDGE_APPVIEW_DB_URL) is required: a PostgreSQL URL')
  return opts
}

const opts = parseOptions(process.argv.slice(2), process.env)
const net_ = { plc: null, pds: null, bsky: null, bsync: null }
let shuttingDown = false

async function start() {
  const bsyncApiKey = 'bsync-api-key'
  net_.plc = await TestPlc.create({})
  net_.bsync = await TestBsync.create({
    apiKeys: [bsyncApiKey],
    dbUrl: opts.dbUrl,
    dbSchema: `bsync_${opts.dbSchema}`,
  })
  const pdsPort = await freePort()
  net_.bsky = await TestBsky.create({
    plcUrl: net_.plc.url,
    pdsPort,
    bsyncApiKey,
    bsyncUrl: net_.bsync.url,
    repoProvider: `ws://localhost:${pdsPort}`,
    dbPostgresSchema: `appview_${opts.dbSchema}`,
    dbPostgresUrl: opts.dbUrl,
  })
  net_.bsync.ctx.dataplaneClients = [net_.bsky.ctx.dataplane]
  net_.pds = await TestPds.create({
    port: pdsPort,
    didPlcUrl: net_.plc.url,
    bskyAppViewUrl: net_.bsky.url,
    bskyAppViewDid: net_.bsky.ctx.cfg.serverDid,
  })
  // Handles (*.test) resolve against the local PDS, not DNS.
  mockNetworkUtilities(net_.pds, net_.bsky)
  await sync()
}

async function freePort() {
  const srv = net.createServer()
  await new Promise((resolve, reject) => {
    srv.once('error', reject)
    srv.listen(0, HOST, resolve)
  })
  const { port } = srv.address()
  await new Promise((resolve) => srv.close(resolve))
  return port
}

// What dev-env's TestNetwork.processAll does, without Ozone: the PDS's queues, then the
// AppView's firehose subscription up to the PDS's last sequence number.
async function sync(timeoutMs = 10000) {
  const { pds, bsky, bsync } = net_
  await pds.processAll()
  await bsky.sub.processAll()
  await bsky.bsyncSub.processAll(await bsync.getStreamHeads(), timeoutMs)
  const lastSeq = await pds.ctx.sequencer.curr()
  const started = Date.now()
  while (lastSeq && Date.now() - started < timeoutMs) {
    await bsky.sub.processAll()
    const cursor = await bsky.sub.getCursor()
    if (cursor && cursor >= lastSeq) return
    await new Promise((r) => setTimeout(r, 5))
  }
  if (lastSeq) throw new Error(`the AppView did not index sequence ${lastSeq} within ${timeoutMs} ms`)
}

function info() {
  const { plc, pds, bsky, bsync } = net_
  return {
    pds_url: `http://${HOST}:${pds.port}`,
    appview_url: `http://${HOST}:${bsky.port}`,
    plc_url: `http://${HOST}:${plc.port}`,
    bsync_url: `http://${HOST}:${bsync.port}`,
    appview_did: bsky.ctx.cfg.serverDid,
    pds_admin_password: pds.ctx.cfg.service.adminPassword ?? null,
    node: process.version,
    pid: process.pid,
    rss_mb: Math.round(process.memoryUsage().rss / 2 ** 20),
  }
}

async function shutdown(reason, code = 0) {
  if (shuttingDown) return
  shuttingDown = true
  setTimeout(() => process.exit(code), 8000).unref()
  for (const name of ['pds', 'bsky', 'bsync', 'plc']) {
    try {
      await net_[name]?.close()
    } catch (err) {
      process.stderr.write(`stopping ${name}: ${err?.stack ?? err}\n`)
    }
  }
  process.stderr.write(`server.mjs: exit (${reason})\n`)
  process.exit(code)
}

process.on('SIGTERM', () => shutdown('SIGTERM'))
process.on('SIGINT', () => shutdown('SIGINT'))
process.on('SIGHUP', () => shutdown('SIGHUP'))
process.on('uncaughtException', (err) => {
  process.stderr.write(`server.mjs: uncaught exception: ${err?.stack ?? err}\n`)
  shutdown('uncaught exception', 1)
})
process.on('unhandledRejection', (err) => {
  process.stderr.write(`server.mjs: unhandled rejection: ${err?.stack ?? err}\n`)
})

let queue = Promise.resolve()
const rl = readline.createInterface({ input: process.stdin, terminal: false })
rl.on('line', (line) => {
  const cmd = line.trim()
  if (!cmd) return
  queue = queue
    .then(() => handle(cmd))
    .catch((err) => {
      process.stderr.write(`command ${cmd}: ${err?.stack ?? err}\n`)
      emit({ event: 'error', command: cmd, message: String(err?.message ?? err) })
    })
})
rl.on('close', () => {
  queue.finally(() => shutdown('stdin closed'))
})

async function handle(cmd) {
  if (shuttingDown) return
  const started = performance.now()
  if (cmd === 'sync') {
    await sync()
    emit({ event: 'synced', ms: Math.round(performance.now() - started) })
  } else if (cmd === 'ping') {
    emit({ event: 'pong', rss_mb: Math.round(process.memoryUsage().rss / 2 ** 20) })
  } else {
    emit({ event: 'error', command: cmd, message: 'unknown command (sync|ping)' })
  }
}

try {
  await start()
} catch (err) {
  process.stderr.write(`server.mjs: failed to start: ${err?.stack ?? err}\n`)
  await shutdown('start failed', 1)
}
if (!shuttingDown) emit({ event: 'ready', startup_ms: Math.round(process.uptime() * 1000), ...info() })
