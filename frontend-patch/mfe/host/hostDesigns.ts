// The three DataHub MFE host designs the shipped configs target, as their loaders validate and place entries, so the
// test host can check each mfe.config*.yaml against a host of its own design (frontend-patch/README.md,
// "One config per host design"). Each design refuses what its DataHub loader refuses; what it accepts is placed the
// way that design's slot code places it. Sources (datahub-project/datahub, datahub-web-react/src/app/mfeframework/):
//
// - 'nav-only': mfeConfigLoader.tsx of the first MFE host (PR #15358): every entry needs id, label, path (starting
//   with "/"), remoteEntry, module ("<remote>/<exposed>"), flags {enabled, showInNav: boolean} and navIcon; there is
//   no `placement`, so every valid entry becomes a page at /mfe<path> and the host has no entity tab.
// - 'contract-version': slots/slotPlacement.ts, slots/slotContextBuilders.ts and _tests_/slotPlacement.test.tsx: a
//   `placement` needs a known slot and a non-blank string `contractVersion` ("Gate 1"), entityTypes/visibleWhen are
//   arrays of strings, path and navIcon are required for nav.page only; an entity tab shows only on the entityTypes
//   it names (omitted: nowhere) and only when the host has a context builder for its contractVersion ("Gate 2");
//   the tab is named by `label`; the context carries `contractVersion`.
// - 'placement-tabname': mfeConfigLoader.tsx of the other slot design and DataHub's "Micro Frontends" docs page:
//   `placement.slot` must be a known slot, entityTypes an array of strings, tabName a string; other placement keys
//   are ignored; omitted entityTypes means every entity type; the tab is named by tabName, else label; the context
//   carries `version`.
import { load } from 'js-yaml';

export type HostDesign = 'nav-only' | 'contract-version' | 'placement-tabname';
export const HOST_DESIGNS: readonly HostDesign[] = ['nav-only', 'contract-version', 'placement-tabname'];
export type Slot = 'nav.page' | 'entity.detail.tab';
const SLOTS: readonly string[] = ['nav.page', 'entity.detail.tab'];
// The contract versions a contract-version host has context builders for (slotContextBuilders.ts).
const CONTEXT_BUILDER_VERSIONS = ['1.0.0'];

export interface MFEEntry {
    id: string;
    label: string;
    path?: string;
    remoteEntry: string;
    module: string;
    flags: { enabled: boolean; showInNav?: boolean };
    navIcon?: string;
    placement?: {
        slot: Slot;
        contractVersion?: string;
        entityTypes?: string[];
        tabName?: string;
        visibleWhen?: string[];
    };
}

export interface LoadedConfig {
    accepted: MFEEntry[];
    refused: { id: string; errors: string[] }[];
}

const isStringArray = (value: unknown): boolean =>
    Array.isArray(value) && value.every((item: unknown) => typeof item === 'string');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function validatePlacement(design: HostDesign, placement: any, errors: string[]): void {
    if (design === 'nav-only' || placement === undefined) return; // the first host has no placement at all
    if (typeof placement !== 'object' || placement === null) {
        errors.push('placement must be an object');
        return;
    }
    if (!SLOTS.includes(placement.slot)) errors.push(`placement.slot must be one of the known slots; got "${placement.slot}"`);
    if (placement.entityTypes !== undefined && !isStringArray(placement.entityTypes))
        errors.push('placement.entityTypes must be an array of strings');
    if (design === 'contract-version') {
        if (typeof placement.contractVersion !== 'string' || !placement.contractVersion.trim())
            errors.push('placement.contractVersion must be a non-blank string');
        if (placement.visibleWhen !== undefined && !isStringArray(placement.visibleWhen))
            errors.push('placement.visibleWhen must be an array of strings');
    } else if (placement.tabName !== undefined && typeof placement.tabName !== 'string') {
        errors.push('placement.tabName must be a string');
    }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function validateEntry(design: HostDesign, config: any): string[] {
    const errors: string[] = [];
    const slot: unknown = design === 'nav-only' ? undefined : config?.placement?.slot;
    const navPage = slot === undefined || slot === 'nav.page';
    const required = ['id', 'label', 'remoteEntry', 'module', 'flags', ...(navPage ? ['path', 'navIcon'] : [])];
    required.forEach((field) => {
        if (config[field] === undefined || config[field] === null) errors.push(`Missing required field: ${field}`);
    });
    if (typeof config.id !== 'string') errors.push('id must be a string');
    if (typeof config.label !== 'string') errors.push('label must be a string');
    if (navPage && (typeof config.path !== 'string' || !config.path.startsWith('/')))
        errors.push('path must be a string starting with "/"');
    if (typeof config.remoteEntry !== 'string') errors.push('remoteEntry must be a string');
    if (typeof config.module !== 'string' || !config.module.includes('/'))
        errors.push('module must be a string with pattern "moduleName/functionName"');
    if (typeof config.flags !== 'object' || config.flags === null) errors.push('flags must be an object');
    if (config.flags) {
        if (typeof config.flags.enabled !== 'boolean') errors.push('flags.enabled must be boolean');
        // The contract-version design accepts a tab entry without showInNav (slotPlacement.test.tsx).
        const showInNavOptional = design === 'contract-version' && !navPage;
        if (!(showInNavOptional && config.flags.showInNav === undefined) && typeof config.flags.showInNav !== 'boolean')
            errors.push('flags.showInNav must be boolean');
    }
    if (navPage && (typeof config.navIcon !== 'string' || !config.navIcon.length))
        errors.push('navIcon must be a non-empty string');
    validatePlacement(design, config.placement, errors);
    return errors;
}

/** loadMFEConfigFromYAML of the design: invalid entries are dropped (and listed), the rest kept. */
export function loadConfig(design: HostDesign, yamlText: string): LoadedConfig {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const parsed = load(yamlText) as any;
    if (!parsed || !Array.isArray(parsed.microFrontends)) throw new Error('Invalid YAML: missing microFrontends array');
    const result: LoadedConfig = { accepted: [], refused: [] };
    for (const entry of parsed.microFrontends) {
        const errors = validateEntry(design, entry);
        if (errors.length) result.refused.push({ id: String(entry?.id ?? 'unknown'), errors });
        else result.accepted.push(entry as MFEEntry);
    }
    return result;
}

function slotOf(design: HostDesign, entry: MFEEntry): Slot {
    return design === 'nav-only' ? 'nav.page' : (entry.placement?.slot ?? 'nav.page');
}

function matchesEntityType(design: HostDesign, entry: MFEEntry, entityType: string): boolean {
    const types = entry.placement?.entityTypes;
    // contract-version: an entity-scoped placement without entityTypes shows nowhere (explicit opt-in);
    // placement-tabname: it shows on every entity type.
    if (!types) return design !== 'contract-version';
    return types.some((type) => type.toUpperCase() === entityType.toUpperCase());
}

/** The enabled entries the host renders in `slot` (for an entity tab: on a page of `entityType`). */
export function resolveSlot(design: HostDesign, entries: MFEEntry[], slot: Slot, entityType = ''): MFEEntry[] {
    return entries.filter((entry) => {
        if (!entry.flags.enabled || slotOf(design, entry) !== slot) return false;
        if (design === 'contract-version' && !CONTEXT_BUILDER_VERSIONS.includes(entry.placement?.contractVersion ?? '1.0.0'))
            return false; // Gate 2: no context builder for that version, fail closed
        return slot === 'nav.page' || matchesEntityType(design, entry, entityType);
    });
}

/** The caption of the entity tab (nav pages are titled by label). */
export function tabName(design: HostDesign, entry: MFEEntry): string {
    return design === 'placement-tabname' ? (entry.placement?.tabName ?? entry.label) : entry.label;
}

/** What the design hands to mount(el, ctx); the first host calls mount(el) without a context. */
export function buildContext(design: HostDesign, slot: Slot, urn: string, entityType: string): unknown {
    if (design === 'nav-only') return undefined;
    const principal = { user: 'urn:li:corpuser:datahub' };
    const version = design === 'contract-version' ? { contractVersion: '1.0.0' } : { version: '1.0.0' };
    if (slot === 'entity.detail.tab') return { slot, ...version, entity: { urn, type: entityType }, principal };
    return { slot, ...version, principal };
}
