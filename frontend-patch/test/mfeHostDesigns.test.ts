// The three DataHub MFE host designs of the test host (mfe/host/hostDesigns.ts) against the three shipped configs,
// without a browser: which entries each design's loader accepts or refuses, and what it places in each slot. The
// browser runs of the same pairs are in tests/browser/test_mfe_host.py.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

import { HostDesign, loadConfig, resolveSlot, tabName } from '../mfe/host/hostDesigns';

const MFE = join(dirname(fileURLToPath(import.meta.url)), '..', 'mfe');
const FILES = {
    navOnly: readFileSync(join(MFE, 'mfe.config.nav-only.yaml'), 'utf8'),
    contract: readFileSync(join(MFE, 'mfe.config.yaml'), 'utf8'),
    placement: readFileSync(join(MFE, 'mfe.config.slot-placement.yaml'), 'utf8'),
};
const TAB = 'lambda-trigger-dataset-tab';

function placed(design: HostDesign, yamlText: string) {
    const loaded = loadConfig(design, yamlText);
    return {
        accepted: loaded.accepted.map((e) => e.id),
        refused: loaded.refused.map((r) => r.id),
        nav: resolveSlot(design, loaded.accepted, 'nav.page').map((e) => e.id),
        tab: resolveSlot(design, loaded.accepted, 'entity.detail.tab', 'DATASET').map((e) => e.id),
        chartTab: resolveSlot(design, loaded.accepted, 'entity.detail.tab', 'CHART').map((e) => e.id),
    };
}

describe('each shipped config in the host of its design', () => {
    it('nav-only: the nav page', () => {
        expect(placed('nav-only', FILES.navOnly)).toEqual({
            accepted: ['lambda-runs'],
            refused: [],
            nav: ['lambda-runs'],
            tab: [],
            chartTab: [],
        });
    });
    it.each([
        ['contract-version', FILES.contract],
        ['placement-tabname', FILES.placement],
    ] as const)('%s: the nav page and the dataset tab, on datasets only', (design, text) => {
        expect(placed(design, text)).toEqual({
            accepted: ['lambda-runs', TAB],
            refused: [],
            nav: ['lambda-runs'],
            tab: [TAB],
            chartTab: [],
        });
    });
});

describe('across designs', () => {
    it('the contract-version host refuses the placement.tabName tab (no contractVersion)', () => {
        const loaded = loadConfig('contract-version', FILES.placement);
        expect(loaded.refused).toEqual([{ id: TAB, errors: ['placement.contractVersion must be a non-blank string'] }]);
        expect(placed('contract-version', FILES.placement).tab).toEqual([]);
    });
    it('the placement.tabName host takes the contract-version tab, named by its label', () => {
        const loaded = loadConfig('placement-tabname', FILES.contract);
        expect(loaded.refused).toEqual([]);
        const [entry] = resolveSlot('placement-tabname', loaded.accepted, 'entity.detail.tab', 'DATASET');
        expect(tabName('placement-tabname', entry)).toBe('Ingestion runs');
    });
    it('the nav-only host refuses the tab without path and navIcon, and has no tab slot', () => {
        expect(placed('nav-only', FILES.placement)).toMatchObject({ accepted: ['lambda-runs'], refused: [TAB], tab: [] });
        // The contract-version tab keeps path and navIcon: an unlinked page there, still no tab.
        expect(placed('nav-only', FILES.contract)).toMatchObject({ refused: [], nav: ['lambda-runs', TAB], tab: [] });
    });
    it('every slot design takes the nav-only file', () => {
        for (const design of ['contract-version', 'placement-tabname'] as const) {
            expect(placed(design, FILES.navOnly)).toMatchObject({ refused: [], nav: ['lambda-runs'], tab: [] });
        }
    });
});

describe('the rules that tell the two slot designs apart', () => {
    const tab = (placement: string) => `microFrontends:
  - id: t
    label: T
    remoteEntry: /r.js
    module: m/mount
    flags: {enabled: true, showInNav: false}
    placement: ${placement}`;
    it('contract-version: a blank or unknown contractVersion, or no entityTypes, shows no tab', () => {
        const refused = loadConfig('contract-version', tab("{slot: entity.detail.tab, contractVersion: ' ', entityTypes: [dataset]}"));
        expect(refused.refused.map((r) => r.id)).toEqual(['t']);
        for (const placement of [
            "{slot: entity.detail.tab, contractVersion: '9.9.9', entityTypes: [dataset]}",
            "{slot: entity.detail.tab, contractVersion: '1.0.0'}",
        ]) {
            const loaded = loadConfig('contract-version', tab(placement));
            expect(loaded.refused).toEqual([]);
            expect(resolveSlot('contract-version', loaded.accepted, 'entity.detail.tab', 'DATASET')).toEqual([]);
        }
    });
    it('placement-tabname: no entityTypes means every entity type; a non-string tabName is refused', () => {
        const loaded = loadConfig('placement-tabname', tab('{slot: entity.detail.tab}'));
        expect(resolveSlot('placement-tabname', loaded.accepted, 'entity.detail.tab', 'CHART').map((e) => e.id)).toEqual(['t']);
        expect(loadConfig('placement-tabname', tab('{slot: entity.detail.tab, tabName: [x]}')).refused.map((r) => r.id)).toEqual([
            't',
        ]);
    });
    it('both: an unknown slot is refused', () => {
        for (const design of ['contract-version', 'placement-tabname'] as const) {
            expect(loadConfig(design, tab("{slot: sidebar.widget, contractVersion: '1.0.0'}")).refused.map((r) => r.id)).toEqual(['t']);
        }
    });
});
