// Serves e2e/dist/ and proxies /api/ingestion/* to API_URL (like the reverse proxy in front of datahub-frontend).
//   API_URL=http://127.0.0.1:8000 [PORT=0] [HOST=127.0.0.1] [API_BEARER_TOKEN=...] [ROOT=<dir>] node e2e/server.mjs
// ROOT (startServer's `root`) serves another built page instead, e.g. the MFE test host (mfe/host/dist/).
// Prints "listening on http://HOST:PORT" once ready. API_BEARER_TOKEN, when set, is sent as
// "Authorization: Bearer ..." on proxied calls that carry no Authorization of their own (no DataHub session here).
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

import { DIST, buildPage } from './build.mjs';

const TYPES = {
    '.html': 'text/html; charset=utf-8',
    '.js': 'text/javascript',
    '.css': 'text/css',
    '.woff': 'font/woff',
    '.woff2': 'font/woff2',
    '.svg': 'image/svg+xml',
    '.png': 'image/png',
};
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'upgrade', 'host', 'proxy-connection']);

export async function startServer({ apiUrl, port = 0, host = '127.0.0.1', bearerToken, root } = {}) {
    if (!apiUrl) throw new Error('API_URL is required (the api to proxy /api/ingestion/* to)');
    const base = root ?? DIST;
    if (!root && !existsSync(join(DIST, 'page.js'))) await buildPage();
    if (!existsSync(join(base, 'index.html'))) throw new Error(`${base}/index.html not found: build the page first`);
    const api = new URL(apiUrl);

    const server = http.createServer((req, res) => {
        const url = new URL(req.url ?? '/', 'http://local');
        if (url.pathname.startsWith('/api/ingestion/')) {
            proxy(req, res, api, url, bearerToken);
            return;
        }
        if (url.pathname === '/favicon.ico') {
            res.writeHead(204).end();
            return;
        }
        const rel = url.pathname === '/' ? 'index.html' : normalize(url.pathname).replace(/^([/\\])+/, '');
        const file = join(base, rel);
        if (!file.startsWith(base) || !existsSync(file)) {
            res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
            return;
        }
        res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' });
        res.end(readFileSync(file));
    });

    await new Promise((resolve) => server.listen(port, host, resolve));
    const address = server.address();
    const url = `http://${host}:${address.port}`;
    return {
        url,
        close: () => new Promise((resolve) => server.close(() => resolve())),
        server,
    };
}

function proxy(req, res, api, url, bearerToken) {
    const headers = {};
    for (const [name, value] of Object.entries(req.headers)) {
        if (!HOP_BY_HOP.has(name) && value !== undefined) headers[name] = value;
    }
    if (bearerToken && !headers.authorization) headers.authorization = `Bearer ${bearerToken}`;
    const basePath = api.pathname.replace(/\/$/, '');
    const upstream = http.request(
        {
            protocol: api.protocol,
            hostname: api.hostname,
            port: api.port,
            method: req.method,
            path: `${basePath}${url.pathname}${url.search}`,
            headers,
        },
        (upstreamRes) => {
            const out = {};
            for (const [name, value] of Object.entries(upstreamRes.headers)) {
                if (!HOP_BY_HOP.has(name) && value !== undefined) out[name] = value;
            }
            res.writeHead(upstreamRes.statusCode ?? 502, out);
            upstreamRes.pipe(res);
        },
    );
    upstream.on('error', (error) => {
        if (!res.headersSent) res.writeHead(502, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ status: 'failed', error: 'proxy_error', message: `api unreachable: ${error.message}` }));
    });
    req.pipe(upstream);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
    const { url, close } = await startServer({
        apiUrl: process.env.API_URL,
        port: Number(process.env.PORT ?? 0),
        host: process.env.HOST ?? '127.0.0.1',
        bearerToken: process.env.API_BEARER_TOKEN,
        root: process.env.ROOT,
    });
    console.log(`listening on ${url}`);
    const stop = () => close().then(() => process.exit(0));
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
}
