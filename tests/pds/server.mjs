#!/usr/bin/env node
// A real atproto PLC directory + PDS for bridge's tests, on 127.0.0.1 only.
//
// One node process holds both servers. PLC keeps its directory in memory
// (Database.mock()), so it lives as long as this process; the PDS can be
// stopped and started again inside the process (same port, same data
// directory, same secrets), which is how tests simulate "PDS down, back later"
// without losing the DIDs that PLC knows.
//
// Usage: node server.mjs [options]          (all options also read from env)
//   --data-dir DIR          PDS data + blobs (BRIDGE_PDS_DATA_DIR); default: a new temp dir
//   --remove-on-exit DIR    delete DIR (e.g. the caller's run dir) on exit; repeatable. A data dir
//                           that this script made itself is always deleted.
//   --port N                PDS port (BRIDGE_PDS_PORT); default: a free port chosen before configuring
//   --plc-port N            PLC port (BRIDGE_PDS_PLC_PORT); default: a free port
//   --rate-limits           turn the PDS's rate limits on (BRIDGE_PDS_RATE_LIMITS=1)
//   --blob-upload-limit N   max uploadBlob body in bytes (BRIDGE_PDS_BLOB_UPLOAD_LIMIT); default 5 MiB
//   --request-log FILE      append one JSON line per request arrival and one per response
//                           (BRIDGE_PDS_REQUEST_LOG)
//
// stdout carries only JSON lines: {"event":"ready",...} once both servers listen, then one answer per
// command. Commands, one per line on stdin: "stop" (stop the PDS), "start" (start it again),
// "ping". EOF on stdin, SIGTERM or SIGINT: stop everything, delete owned dirs, exit 0.
// Anything else (diagnostics, errors) goes to stderr.

import { createRequire } from 'node:module'
import crypto from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import readline from 'node:readline'

const require = createRequire(import.meta.url)
const { PDS, envToCfg, envToSecrets } = require('@atproto/pds')
const { PlcServer, Database: PlcDatabase } = require('@did-plc/server')
const { Secp256k1Keypair } = require('@atproto/crypto')

const HOST = '127.0.0.1'

// ---------------------------------------------------------------- options
function parseOptions(argv, env) {
  const opts = {
    dataDir: env.BRIDGE_PDS_DATA_DIR || null,
    removeOnExit: [],
    port: intOrNull(env.BRIDGE_PDS_PORT),
    plcPort: intOrNull(env.BRIDGE_PDS_PLC_PORT),
    rateLimits: truthy(env.BRIDGE_PDS_RATE_LIMITS),
    blobUploadLimit: intOrNull(env.BRIDGE_PDS_BLOB_UPLOAD_LIMIT),
    requestLog: env.BRIDGE_PDS_REQUEST_LOG || null,
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const val = () => {
      if (i + 1 >= argv.length) die(`option ${a} needs a value`)
      return argv[++i]
    }
    if (a === '--data-dir') opts.dataDir = val()
    else if (a === '--remove-on-exit') opts.removeOnExit.push(val())
    else if (a === '--port') opts.port = intOrDie(a, val())
    else if (a === '--plc-port') opts.plcPort = intOrDie(a, val())
    else if (a === '--rate-limits') opts.rateLimits = true
    else if (a === '--no-rate-limits') opts.rateLimits = false
    else if (a === '--blob-upload-limit') opts.blobUploadLimit = intOrDie(a, val())
    else if (a === '--request-log') opts.requestLog = val()
    else if (a === '-h' || a === '--help') {
      const lines = fs.readFileSync(new URL(import.meta.url), 'utf8').split('\n').slice(1)
      const header = lines.slice(0, lines.findIndex((l) => !l.startsWith('//')))
      process.stdout.write(header.map((l) => l.slice(3)).join('\n') + '\n')
      process.exit(0)
    } else die(`unknown argument: ${a}`)
  }
  return opts
}

function truthy(v) {
  return ['1', 'true', 'yes', 'on'].includes(String(v ?? '').toLowerCase())
}
function intOrNull(v) {
  return v === undefined || v === '' ? null : intOrDie('env', v)
}
function intOrDie(what, v) {
  const n = Number(v)
  if (!Number.isInteger(n) || n < 0) die(`${what}: not a non-negative integer: ${v}`)
  return n
}
function die(msg) {
  process.stderr.write(`server.mjs: ${msg}\n`)
  process.exit(2)
}
function emit(obj) {
  // stdout is a pipe: synchronous on Linux, so each line arrives whole.
  process.stdout.write(JSON.stringify(obj) + '\n')
}

// A port is needed BEFORE the PDS is configured (publicUrl and every DID
// document carry it), so find a free one and give it back. It is taken below
// the kernel's ephemeral range when possible: while the PDS is stopped, no
// outgoing connection can then borrow its port, and a restart can bind it again.
async function tryListen(port) {
  const srv = net.createServer()
  try {
    await new Promise((resolve, reject) => {
      srv.once('listening', resolve)
      srv.once('error', reject)
      srv.listen(port, HOST)
    })
  } catch {
    return null
  }
  const got = srv.address().port
  await new Promise((resolve) => srv.close(resolve))
  return got
}

async function freePort() {
  let low = 32768
  try {
    low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0])
  } catch {}
  if (low > 12000) {
    for (let i = 0; i < 50; i++) {
      const port = await tryListen(10000 + crypto.randomInt(low - 10000))
      if (port) return port
    }
  }
  const port = await tryListen(0)
  if (!port) throw new Error('no free port on ' + HOST)
  return port
}

// express' app.listen(port) binds every interface; make it loopback only.
function listenOnLoopback(app, onRequest) {
  app.listen = function listen(port, ...rest) {
    const handler = onRequest
      ? (req, res) => {
          onRequest(req, res)
          app(req, res)
        }
      : app
    const server = http.createServer(handler)
    const cb = rest.find((x) => typeof x === 'function')
    return server.listen(port, HOST, cb)
  }
}

// ---------------------------------------------------------------- request log
function makeRequestLogger(file) {
  if (!file) return null
  const fd = fs.openSync(file, 'a')
  let seq = 0
  const write = (obj) => {
    try {
      fs.writeSync(fd, JSON.stringify(obj) + '\n')
    } catch (err) {
      process.stderr.write(`request log: ${err}\n`)
    }
  }
  const logger = (req, res) => {
    const id = ++seq
    const started = performance.now()
    // Written synchronously when the request ARRIVES, before any handler
    // runs: once a client has its answer, the line is in the file.
    write({ ev: 'req', id, ts: Date.now() / 1000, method: req.method, url: req.url })
    let done = false
    const finish = () => {
      if (done) return
      done = true
      const rec = { ev: 'res', id, status: res.statusCode, ms: Math.round((performance.now() - started) * 10) / 10 }
      if (!res.writableFinished) rec.aborted = true // the connection closed before the answer was sent
      write(rec)
    }
    res.once('finish', finish)
    res.once('close', finish)
  }
  logger.close = () => {
    try {
      fs.closeSync(fd)
    } catch {}
  }
  return logger
}

// ---------------------------------------------------------------- main
const opts = parseOptions(process.argv.slice(2), process.env)
const ownedDirs = [...opts.removeOnExit]
let dataDir = opts.dataDir
if (!dataDir) {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bridge-pds-'))
  ownedDirs.push(dataDir)
} else {
  fs.mkdirSync(dataDir, { recursive: true })
}
const requestLogger = makeRequestLogger(opts.requestLog)

let plc = null
let pds = null
let pdsEnv = null
let secrets = null
let shuttingDown = false

async function startPlc() {
  const port = opts.plcPort ?? (await freePort())
  const server = PlcServer.create({ db: PlcDatabase.mock(), port })
  listenOnLoopback(server.app)
  await server.start()
  return server
}

async function configurePds(plcUrl) {
  const port = opts.port ?? (await freePort())
  const rotationKey = await Secp256k1Keypair.create({ exportable: true })
  const recoveryKey = await Secp256k1Keypair.create()
  const hex = (n) => crypto.randomBytes(n).toString('hex')
  const env = {
    port,
    hostname: 'localhost',
    devMode: true,
    version: '0.0.0-bridge-test',
    dataDirectory: dataDir,
    blobstoreDiskLocation: path.join(dataDir, 'blobs'),
    didPlcUrl: plcUrl,
    recoveryDidKey: recoveryKey.did(),
    serviceHandleDomains: ['.test'],
    handleBackupNameservers: [],
    inviteRequired: false,
    disableSsrfProtection: true,
    crawlers: [],
    rateLimitsEnabled: opts.rateLimits,
    rateLimitBypassIps: [],
    trustedOAuthClients: [],
    plcRotationKeyK256PrivateKeyHex: Buffer.from(await rotationKey.export()).toString('hex'),
    jwtSecret: hex(32),
    dpopSecret: hex(32),
    adminPassword: hex(16),
  }
  if (opts.blobUploadLimit !== null) env.blobUploadLimit = opts.blobUploadLimit
  return env
}

async function startPds() {
  // Same env (port, data dir, keys, secrets) every time: tokens issued before a
  // restart stay valid, and the data on disk is reopened.
  const cfg = envToCfg(pdsEnv)
  secrets = secrets ?? envToSecrets(pdsEnv)
  const server = await PDS.create(cfg, secrets)
  listenOnLoopback(server.app, requestLogger)
  await server.start()
  return server
}

function info(extra = {}) {
  const port = pdsEnv.port
  return {
    pds_url: `http://${HOST}:${port}`,
    pds_public_url: `http://localhost:${port}`,
    pds_port: port,
    plc_url: `http://${HOST}:${plc.ctx.port}`,
    plc_port: plc.ctx.port,
    admin_password: pdsEnv.adminPassword,
    service_did: 'did:web:localhost',
    data_dir: dataDir,
    rate_limits: opts.rateLimits,
    blob_upload_limit: pdsEnv.blobUploadLimit ?? 5 * 1024 * 1024,
    pid: process.pid,
    ...extra,
  }
}

async function stopPds() {
  if (!pds) return false
  const p = pds
  pds = null
  await p.destroy()
  return true
}

async function shutdown(reason, code = 0) {
  if (shuttingDown) return
  shuttingDown = true
  // Never hang on the way out: whatever happens, exit within 8 s.
  setTimeout(() => {
    removeOwned()
    process.exit(code)
  }, 8000).unref()
  try {
    await stopPds()
  } catch (err) {
    process.stderr.write(`stopping PDS: ${err?.stack ?? err}\n`)
  }
  try {
    await plc?.destroy()
  } catch (err) {
    process.stderr.write(`stopping PLC: ${err?.stack ?? err}\n`)
  }
  requestLogger?.close()
  removeOwned()
  process.stderr.write(`server.mjs: exit (${reason})\n`)
  process.exit(code)
}

function removeOwned() {
  for (const dir of ownedDirs.splice(0)) {
    try {
      fs.rmSync(dir, { recursive: true, force: true })
    } catch (err) {
      process.stderr.write(`removing ${dir}: ${err}\n`)
    }
  }
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

// Commands are handled one at a time, in order.
let queue = Promise.resolve()
const rl = readline.createInterface({ input: process.stdin, terminal: false })
rl.on('line', (line) => {
  const cmd = line.trim()
  if (!cmd) return
  queue = queue.then(() => handle(cmd)).catch((err) => {
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
  const ms = () => Math.round(performance.now() - started)
  if (cmd === 'stop') {
    const wasRunning = await stopPds()
    emit({ event: 'stopped', was_running: wasRunning, ms: ms() })
  } else if (cmd === 'start') {
    if (!pds) pds = await startPds()
    emit({ event: 'started', ms: ms(), ...info() })
  } else if (cmd === 'ping') {
    emit({ event: 'pong', pds_running: !!pds })
  } else {
    emit({ event: 'error', command: cmd, message: 'unknown command (stop|start|ping)' })
  }
}

try {
  plc = await startPlc()
  pdsEnv = await configurePds(`http://${HOST}:${plc.ctx.port}`)
  pds = await startPds()
} catch (err) {
  process.stderr.write(`server.mjs: failed to start: ${err?.stack ?? err}\n`)
  await shutdown('start failed', 1)
}
if (!shuttingDown) {
  emit({ event: 'ready', startup_ms: Math.round(process.uptime() * 1000), ...info() })
}
