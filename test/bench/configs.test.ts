// The generated nginx and HAProxy configurations, and the command lines RESULTS.md shows.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { caddyConfig, haproxyConfig, nginxProxyConfig, nginxUpstreamConfig, JSON_BODY } from '../../bench/lib/systems.js'
import { commandLine } from '../../bench/lib/processes.js'

test('nginx runs in the foreground with its own prefix, pid file and temp paths (works as non-root)', () => {
  const conf = nginxProxyConfig({ prefix: '/tmp/b/nginx', port: 8080, upstreamPort: 9090, phase: 'json' })
  assert.match(conf, /^daemon off;$/m)
  assert.match(conf, /^worker_processes 1;$/m)
  assert.match(conf, /^pid \/tmp\/b\/nginx\/nginx\.pid;$/m)
  for (const temp of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) assert.match(conf, new RegExp(`${temp}_temp_path /tmp/b/nginx/`))
  assert.doesNotMatch(conf, /^user /m, 'no user directive unless asked (root only)')
  assert.match(nginxProxyConfig({ prefix: '/p', port: 1, upstreamPort: 2, phase: 'json', user: 'root' }), /^user root;$/m)
})

test('the nginx reference proxy keeps a keep-alive pool upstream; streaming settings only in phase 2', () => {
  const json = nginxProxyConfig({ prefix: '/p', port: 8080, upstreamPort: 9090, phase: 'json' })
  assert.match(json, /server 127\.0\.0\.1:9090;\s+keepalive 64;/)
  assert.match(json, /proxy_http_version 1\.1;/)
  assert.match(json, /proxy_set_header Connection "";/)
  assert.match(json, /listen 127\.0\.0\.1:8080;/)
  assert.doesNotMatch(json, /proxy_buffering off/)
  const stream = nginxProxyConfig({ prefix: '/p', port: 8080, upstreamPort: 9090, phase: 'stream' })
  for (const line of ['proxy_buffering off;', 'proxy_request_buffering off;', 'client_max_body_size 0;']) assert.ok(stream.includes(line), line)
})

test('the node upstream answers /json with the same JSON as the nginx one (it is standalone: a copy, kept equal here)', () => {
  const source = readFileSync(new URL('../../bench/servers/upstream.ts', import.meta.url), 'utf8')
  assert.ok(source.includes(`const JSON_BODY = '${JSON_BODY}'`), 'bench/servers/upstream.ts declares the same JSON_BODY')
})

test('the nginx upstream returns the small JSON on /json', () => {
  const conf = nginxUpstreamConfig({ prefix: '/p', port: 7070 })
  assert.ok(conf.includes(`return 200 '${JSON_BODY}';`))
  assert.match(conf, /default_type application\/json;/)
  assert.ok(JSON.parse(JSON_BODY))
})

test('HAProxy: one thread, connection reuse, http-no-delay only for streaming', () => {
  const json = haproxyConfig({ port: 8080, upstreamPort: 9090, maxconn: 4096, phase: 'json' })
  assert.match(json, /^\s+nbthread 1$/m)
  assert.match(json, /^\s+maxconn 4096$/m)
  assert.match(json, /http-reuse always/)
  assert.match(json, /bind 127\.0\.0\.1:8080/)
  assert.match(json, /server up 127\.0\.0\.1:9090/)
  assert.doesNotMatch(json, /http-no-delay/)
  assert.match(haproxyConfig({ port: 1, upstreamPort: 2, maxconn: 256, phase: 'stream' }), /option http-no-delay/)
})

test('command lines shown in RESULTS.md are copy-pasteable', () => {
  assert.equal(commandLine('taskset', ['-c', '0', 'nginx', '-c', '/tmp/a b/nginx.conf'], { RELAY_LOG_LEVEL: 'INFO' }),
    "RELAY_LOG_LEVEL=INFO taskset -c 0 nginx -c '/tmp/a b/nginx.conf'")
  assert.equal(commandLine('echo', ["it's"]), "echo 'it'\\''s'")
})

test('Caddy: loopback only, no admin API, no automatic HTTPS, storage in the run\'s folder, every write flushed', () => {
  const conf = caddyConfig({ port: 8080, upstreamPort: 9090, dir: '/tmp/b/caddy' })
  for (const line of ['admin off', 'auto_https off', 'storage file_system /tmp/b/caddy/data', ':8080 {', 'bind 127.0.0.1', 'reverse_proxy 127.0.0.1:9090 {', 'flush_interval -1', 'keepalive_idle_conns 64']) {
    assert.ok(conf.includes(line), line)
  }
})
