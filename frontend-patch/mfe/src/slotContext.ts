/**
 * What DataHub's MFE host hands to `mount(el, ctx)`, as far as this remote reads it.
 *
 * DataHub (`datahub-web-react/src/app/mfeframework/slots/slotTypes.ts`) defines a typed context per slot:
 * every context has `slot` ('nav.page' | 'entity.detail.tab') and a contract version, and the
 * `entity.detail.tab` context adds `entity: {urn, type}` (type is the GraphQL EntityType name, e.g. DATASET).
 * Hosts from before slots existed call `mount(el)` for a nav page with no context at all, so every field is
 * optional here and a missing context means the nav page.
 */
export interface HostContext {
    slot?: string;
    contractVersion?: string;
    /** Name of the contract version field in the first slot docs (`version`); read the same way. */
    version?: string;
    principal?: { user?: string };
    entity?: { urn?: string; type?: string };
}

export type PanelKind = 'dataset' | 'runs';

/** Which panel to draw: the dataset's run panel on a dataset tab, the "Lambda runs" page otherwise. */
export function panelFor(ctx: HostContext | null | undefined): { kind: PanelKind; datasetUrn?: string; entityType?: string } {
    if (ctx && ctx.slot === 'entity.detail.tab') {
        return { kind: 'dataset', datasetUrn: ctx.entity?.urn || '', entityType: ctx.entity?.type || '' };
    }
    return { kind: 'runs' };
}
