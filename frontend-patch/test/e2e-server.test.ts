// @vitest-environment node
// The e2e page server (e2e/server.mjs): serves the bundled page and proxies /api/ingestion/* like the reverse proxy
// in front of datahub-frontend. No browser here; e2e/run.mjs drives one against a real api.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// @ts-expect-error -- plain .mjs, no type declarations
import { startServer } from '../e2e/server.mjs';

interface Seen {
    method?: string;
    url?: string;
    headers: http.IncomingHttpHeaders;
    body: string;
}

const seen: Seen[] = [];
let upstream: http.Server;
let upstreamUrl: string;
let page: { url: string; close: () => Promise<void> };

beforeAll(async () => {
    upstream = http.createServer((req, res) => {
        let body = '';
        req.on('data', (chunk) => {
            body += chunk;
        });
        req.on('end', () => {
            seen.push({ method: req.method, url: req.url, headers: req.headers, body });
            res.writeHead(req.method === 'POST' ? 202 : 200, { 'Content-Type': 'application/json', 'X-Upstream': 'yes' });
            res.end(JSON.stringify({ ok: true }));
        });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    page = await startServer({ apiUrl: upstreamUrl, bearerToken: 'tok-123' });
}, 60000);

afterAll(async () => {
    await page?.close();
    await new Promise((resolve) => upstream?.close(resolve));
});

describe('e2e page server', () => {
    it('serves the page', async () => {
        const res = await fetch(`${page.url}/?datasetUrn=x`);
        expect(res.status).toBe(200);
        const html = await res.text();
        expect(html).toContain('<div id="root"></div>');
        expect((await fetch(`${page.url}/page.js`)).status).toBe(200);
        expect((await fetch(`${page.url}/nope.js`)).status).toBe(404);
    });

    it('proxies GET with the query string and adds the bearer token when there is none', async () => {
        const res = await fetch(`${page.url}/api/ingestion/targets?datasetUrn=urn%3Ali%3Adataset%3Ax`, {
            headers: { Cookie: 'PLAY_SESSION=abc' },
        });
        expect(res.status).toBe(200);
        expect(res.headers.get('x-upstream')).toBe('yes');
        const last = seen[seen.length - 1];
        expect(last.url).toBe('/api/ingestion/targets?datasetUrn=urn%3Ali%3Adataset%3Ax');
        expect(last.headers.cookie).toBe('PLAY_SESSION=abc');
        expect(last.headers.authorization).toBe('Bearer tok-123');
    });

    it('proxies POST bodies intact and keeps the caller’s own Authorization', async () => {
        const body = JSON.stringify({ datasetUrn: 'urn:li:dataset:x', reason: 'why' });
        const res = await fetch(`${page.url}/api/ingestion/run`, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json', Authorization: 'Bearer mine' },
            body,
        });
        expect(res.status).toBe(202);
        const last = seen[seen.length - 1];
        expect(last.method).toBe('POST');
        expect(last.body).toBe(body);
        expect(last.headers['content-type']).toBe('application/json');
        expect(last.headers.authorization).toBe('Bearer mine');
    });

    it('answers 502 in the api error shape when the api is down', async () => {
        const dead = http.createServer();
        await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', resolve));
        const port = (dead.address() as AddressInfo).port;
        await new Promise((resolve) => dead.close(resolve));
        const other = await startServer({ apiUrl: `http://127.0.0.1:${port}` });
        try {
            const res = await fetch(`${other.url}/api/ingestion/runs/x`);
            expect(res.status).toBe(502);
            expect(await res.json()).toMatchObject({ status: 'failed', error: 'proxy_error' });
        } finally {
            await other.close();
        }
    });

    it('serves another page from `root` (the MFE test host), proxying the cancel and the MFE bundle too', async () => {
        const root = mkdtempSync(join(tmpdir(), 'host-root-'));
        mkdirSync(join(root, 'assets'));
        writeFileSync(join(root, 'index.html'), '<div id="app"></div>');
        writeFileSync(join(root, 'assets', 'main.css'), 'body{}');
        const host = await startServer({ apiUrl: upstreamUrl, root });
        try {
            expect(await (await fetch(`${host.url}/`)).text()).toBe('<div id="app"></div>');
            const css = await fetch(`${host.url}/assets/main.css`);
            expect(css.headers.get('content-type')).toBe('text/css');
            expect((await fetch(`${host.url}/page.js`)).status).toBe(404);
            const cancel = await fetch(`${host.url}/api/ingestion/runs/r1/cancel`, { method: 'POST', body: '{}' });
            expect(cancel.status).toBe(202);
            expect(seen[seen.length - 1]).toMatchObject({ method: 'POST', url: '/api/ingestion/runs/r1/cancel' });
            await fetch(`${host.url}/api/ingestion/mfe/remoteEntry.js`);
            expect(seen[seen.length - 1]).toMatchObject({ method: 'GET', url: '/api/ingestion/mfe/remoteEntry.js' });
        } finally {
            await host.close();
            rmSync(root, { recursive: true, force: true });
        }
    });

    it('refuses a root without index.html', async () => {
        const empty = mkdtempSync(join(tmpdir(), 'host-empty-'));
        try {
            await expect(startServer({ apiUrl: upstreamUrl, root: empty })).rejects.toThrow(/index.html not found/);
        } finally {
            rmSync(empty, { recursive: true, force: true });
        }
    });
});
