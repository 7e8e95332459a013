// A minimal MFE host that loads a remote exactly as DataHub's does.
//
// The loading steps follow DataHub's `mountMFE` (datahub-web-react/src/app/mfeframework/MFEConfigurableContainer.tsx):
// the `module` string "<remote>/<exposed>" is split, the remote is registered with
// `setRemote(remote, {url: remoteEntry, format: 'var', from: 'webpack'})`, loaded with `getRemote(remote, './<exposed>')`
// raced against a 5 s timeout, passed through `unwrapDefault`, and the mount function is picked the same way
// (the module if it is a function, else `.mount`, else `.default` / `.default.mount`). It is called as
// `mount(el, ctx)` and, when the slot goes away, the function it returned is called.
//
// The page looks like the two DataHub places a slot renders in: a left navigation with the MFE page
// (`nav.page`), or an entity page with a tab bar (`entity.detail.tab`, context `{entity: {urn, type}}`).
//
//   /?slot=nav.page|entity.detail.tab&urn=<dataset urn>&remoteEntry=<url>&module=lambdaTriggerMFE/mount
import 'antd/dist/antd.css';

import {
    __federation_method_getRemote as getRemote,
    __federation_method_setRemote as setRemote,
    __federation_method_unwrapDefault as unwrapModule,
} from 'virtual:__federation__';

import './host.css';

const REMOTE_LOAD_TIMEOUT_MS = 5000;

type Cleanup = () => void;
type MountFn = (el: HTMLElement, ctx: unknown) => Cleanup | void;

interface HostState {
    phase: 'loading' | 'mounted' | 'error' | 'unmounted';
    error: string | null;
    mountCalls: number;
    cleanupCalls: number;
    cleanupReturned: boolean;
    ctx: unknown;
}

const params = new URLSearchParams(window.location.search);
const slot = params.get('slot') ?? 'nav.page';
const urn = params.get('urn') ?? '';
const remoteEntry = params.get('remoteEntry') ?? '/api/ingestion/mfe/remoteEntry.js';
const moduleName = params.get('module') ?? 'lambdaTriggerMFE/mount';
const label = slot === 'entity.detail.tab' ? 'Ingestion runs' : 'Lambda runs';

const state: HostState = {
    phase: 'loading',
    error: null,
    mountCalls: 0,
    cleanupCalls: 0,
    cleanupReturned: false,
    ctx: null,
};
let cleanup: Cleanup | undefined;

function buildContext(): unknown {
    // What DataHub's slot context builders give for contract version 1.0.0.
    const principal = { user: 'urn:li:corpuser:datahub' };
    if (slot === 'entity.detail.tab') {
        return { slot, contractVersion: '1.0.0', entity: { urn, type: 'DATASET' }, principal };
    }
    return { slot: 'nav.page', contractVersion: '1.0.0', principal };
}

function datasetName(value: string): string {
    const match = /^urn:li:dataset:\(urn:li:dataPlatform:[^,]+,(.+),[^,()]+\)$/.exec(value);
    return match ? match[1] : value;
}

function layout(): HTMLDivElement {
    const app = document.getElementById('app')!;
    const nav = `
      <nav class="host-nav">
        <div class="host-logo">DataHub</div>
        <a class="host-nav-item">Home</a>
        <a class="host-nav-item">Discover</a>
        <a class="host-nav-item">Govern</a>
        <div class="host-nav-title">MFE Apps</div>
        <a class="host-nav-item ${slot === 'nav.page' ? 'active' : ''}">Lambda runs</a>
      </nav>`;
    const entityHeader =
        slot === 'entity.detail.tab'
            ? `<div class="host-entity-header" data-testid="entity-header">
                 <div class="host-entity-type">Dataset</div>
                 <div class="host-entity-name">${escapeHtml(datasetName(urn))}</div>
               </div>
               <div class="host-tabs"><span>Columns</span><span>Lineage</span><span>Properties</span>
                 <span class="active" data-testid="${label}-entity-tab-header">${label}</span></div>`
            : '';
    app.innerHTML = `
      <div class="host-shell">
        ${nav}
        <main class="host-main">
          ${entityHeader}
          <div class="host-slot" data-testid="mfe-configurable-container">
            <div id="mfe-slot" data-testid="mfe-slot-container" data-mfe-id="lambda-trigger" style="min-height: ${
                slot === 'entity.detail.tab' ? 320 : 480
            }px"></div>
          </div>
        </main>
      </div>`;
    return document.getElementById('mfe-slot') as HTMLDivElement;
}

function escapeHtml(text: string): string {
    return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

async function mountMFE(container: HTMLDivElement): Promise<void> {
    const [remoteName, modulePath] = moduleName.split('/');
    const modulePathWithDot = `./${modulePath}`;
    setRemote(remoteName, { url: remoteEntry, format: 'var', from: 'webpack' });
    const timeout = new Promise((_, reject) => {
        setTimeout(
            () => reject(new Error(`Timeout loading from remote ${remoteName}, module: ${modulePathWithDot}`)),
            REMOTE_LOAD_TIMEOUT_MS,
        );
    });
    const remoteModule = await Promise.race([getRemote(remoteName, modulePathWithDot), timeout]);
    const mod = (await unwrapModule(remoteModule)) as unknown;
    const anyMod = mod as { mount?: unknown; default?: unknown } | undefined;
    const maybeFn =
        typeof mod === 'function'
            ? mod
            : (anyMod?.mount ??
              (typeof anyMod?.default === 'function'
                  ? anyMod.default
                  : (anyMod?.default as { mount?: unknown } | undefined)?.mount));
    if (typeof maybeFn !== 'function') throw new Error(`mount is not a function; got ${typeof maybeFn}`);
    const ctx = buildContext();
    state.ctx = ctx;
    state.mountCalls += 1;
    const returned = (maybeFn as MountFn)(container, ctx);
    cleanup = typeof returned === 'function' ? returned : undefined;
    state.cleanupReturned = !!cleanup;
}

function unmount(): void {
    // What React does for DataHub's MFEMount on unmount: call the cleanup the remote returned.
    if (cleanup) {
        state.cleanupCalls += 1;
        cleanup();
        cleanup = undefined;
    }
    state.phase = 'unmounted';
}

async function start(): Promise<void> {
    state.phase = 'loading';
    state.error = null;
    const container = layout();
    try {
        await mountMFE(container);
        state.phase = 'mounted';
    } catch (error) {
        state.phase = 'error';
        state.error = (error as Error)?.message ?? String(error);
        container.innerHTML = `<div class="host-error">${escapeHtml(label)} is not available at this time.</div>`;
    }
}

declare global {
    interface Window {
        mfeHost: { state: HostState; unmount: () => void; remount: () => Promise<void> };
    }
}
window.mfeHost = { state, unmount, remount: start };
start();
