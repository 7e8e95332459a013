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
//
// With `&design=nav-only|contract-version|placement-tabname` the host instead fetches its MFE config from ./mfe/config
// (as DataHub fetches /mfe/config), validates it the way that design's loader does (hostDesigns.ts), and mounts the
// entry that design places in the slot, with that design's context; `state.config` lists what it accepted and
// refused, and the phase is 'absent' when no accepted entry is placed in the slot.
import 'antd/dist/antd.css';

import {
    __federation_method_getRemote as getRemote,
    __federation_method_setRemote as setRemote,
    __federation_method_unwrapDefault as unwrapModule,
} from 'virtual:__federation__';

import './host.css';

import { HostDesign, HOST_DESIGNS, MFEEntry, Slot, buildContext as designContext, loadConfig, resolveSlot, tabName } from './hostDesigns';

const REMOTE_LOAD_TIMEOUT_MS = 5000;

type Cleanup = () => void;
type MountFn = (el: HTMLElement, ctx: unknown) => Cleanup | void;

interface HostState {
    phase: 'loading' | 'mounted' | 'error' | 'unmounted' | 'absent';
    error: string | null;
    mountCalls: number;
    cleanupCalls: number;
    cleanupReturned: boolean;
    ctx: unknown;
    design: HostDesign | null;
    config: { accepted: string[]; refused: { id: string; errors: string[] }[] } | null;
    mountedId: string | null;
    tabName: string | null;
}

const params = new URLSearchParams(window.location.search);
const slot = params.get('slot') ?? 'nav.page';
const urn = params.get('urn') ?? '';
let remoteEntry = params.get('remoteEntry') ?? '/api/ingestion/mfe/remoteEntry.js';
let moduleName = params.get('module') ?? 'lambdaTriggerMFE/mount';
let label = slot === 'entity.detail.tab' ? 'Ingestion runs' : 'Lambda runs';
const designParam = params.get('design');
const design = HOST_DESIGNS.find((d) => d === designParam) ?? null;
if (designParam && !design) throw new Error(`unknown host design ${designParam}`);
// The entity page's GraphQL EntityType; the test host only shows dataset pages.
const ENTITY_TYPE = 'DATASET';

const state: HostState = {
    phase: 'loading',
    error: null,
    mountCalls: 0,
    cleanupCalls: 0,
    cleanupReturned: false,
    ctx: null,
    design,
    config: null,
    mountedId: null,
    tabName: null,
};
let cleanup: Cleanup | undefined;

function buildContext(): unknown {
    if (design) return designContext(design, slot as Slot, urn, ENTITY_TYPE);
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

/** The design's loader over ./mfe/config: picks the entry placed in this slot, or none. */
async function chooseEntry(hostDesign: HostDesign): Promise<MFEEntry | null> {
    const response = await fetch('./mfe/config');
    if (!response.ok) throw new Error(`Failed to fetch YAML: ${response.statusText}`);
    const loaded = loadConfig(hostDesign, await response.text());
    state.config = { accepted: loaded.accepted.map((e) => e.id), refused: loaded.refused };
    const [entry] = resolveSlot(hostDesign, loaded.accepted, slot as Slot, ENTITY_TYPE);
    return entry ?? null;
}

async function start(): Promise<void> {
    state.phase = 'loading';
    state.error = null;
    if (design) {
        try {
            const entry = await chooseEntry(design);
            if (!entry) {
                state.phase = 'absent';
                layout();
                return;
            }
            remoteEntry = entry.remoteEntry;
            moduleName = entry.module;
            label = slot === 'entity.detail.tab' ? tabName(design, entry) : entry.label;
            state.mountedId = entry.id;
            state.tabName = slot === 'entity.detail.tab' ? label : null;
        } catch (error) {
            state.phase = 'error';
            state.error = (error as Error)?.message ?? String(error);
            return;
        }
    }
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
