// The DataHub patch: well-formed, in sync with the sources, and apply.sh's behaviour. The checkout used here is
// synthetic (built from the patch's own context lines), so no DataHub file is needed; set DATAHUB_CHECKOUT=/path to
// a real DataHub v1.7.0 checkout to also apply it to a copy of the real file.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

// @ts-expect-error -- plain .mjs build script, no type declarations
import * as builder from '../scripts/build-patch.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const patchText = readFileSync(join(root, builder.PATCH_FILE), 'utf8');
const applySh = join(root, 'apply.sh');
const HEADER = 'datahub-web-react/src/app/entityV2/shared/containers/profile/header/DefaultEntityHeader.tsx';
const DIR: string = builder.DATAHUB_DIR;

interface Hunk {
    oldStart: number;
    oldCount: number;
    newStart: number;
    newCount: number;
    lines: string[];
}
interface FileDiff {
    oldPath: string;
    newPath: string;
    isNew: boolean;
    hunks: Hunk[];
}

function parsePatch(text: string): FileDiff[] {
    const files: FileDiff[] = [];
    const lines = text.split('\n');
    let i = 0;
    while (i < lines.length && !lines[i].startsWith('diff --git ')) i++; // preamble
    while (i < lines.length) {
        if (lines[i] === '' && i === lines.length - 1) break;
        expect(lines[i]).toMatch(/^diff --git a\/\S+ b\/\S+$/);
        i++;
        let isNew = false;
        while (!lines[i].startsWith('--- ')) {
            if (lines[i].startsWith('new file mode')) isNew = true;
            i++;
        }
        const oldPath = lines[i++].slice(4);
        expect(lines[i]).toMatch(/^\+\+\+ b\//);
        const newPath = lines[i++].slice(6);
        const file: FileDiff = { oldPath, newPath, isNew, hunks: [] };
        while (i < lines.length && lines[i].startsWith('@@ ')) {
            const m = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/.exec(lines[i]);
            expect(m, lines[i]).not.toBeNull();
            const hunk: Hunk = {
                oldStart: Number(m![1]),
                oldCount: m![2] === undefined ? 1 : Number(m![2]),
                newStart: Number(m![3]),
                newCount: m![4] === undefined ? 1 : Number(m![4]),
                lines: [],
            };
            i++;
            let oldSeen = 0;
            let newSeen = 0;
            while (oldSeen < hunk.oldCount || newSeen < hunk.newCount) {
                const line = lines[i++];
                expect(line, `hunk body in ${newPath}`).toMatch(/^[ +-]/);
                if (line[0] !== '+') oldSeen++;
                if (line[0] !== '-') newSeen++;
                hunk.lines.push(line);
            }
            expect(oldSeen).toBe(hunk.oldCount);
            expect(newSeen).toBe(hunk.newCount);
            file.hunks.push(hunk);
        }
        files.push(file);
    }
    return files;
}

const files = parsePatch(patchText);

/** A DataHub-like folder whose header file holds just the patch's context lines at the hunks' positions. */
function syntheticCheckout(mutate?: (header: string) => string): string {
    const dir = mkdtempSync(join(tmpdir(), 'fake-datahub-'));
    const header = files.find((f) => f.newPath === HEADER)!;
    const out: string[] = [];
    for (const hunk of header.hunks) {
        while (out.length < hunk.oldStart - 1) out.push(`// line ${out.length + 1}`);
        for (const line of hunk.lines) if (line[0] !== '+') out.push(line.slice(1));
    }
    for (let k = 0; k < 5; k++) out.push(`// tail ${k}`);
    let content = `${out.join('\n')}\n`;
    if (mutate) content = mutate(content);
    mkdirSync(join(dir, dirname(HEADER)), { recursive: true });
    writeFileSync(join(dir, HEADER), content);
    mkdirSync(join(dir, 'datahub-frontend/conf'), { recursive: true });
    writeFileSync(join(dir, 'datahub-frontend/conf/routes'), 'GET /api/*path controllers.Application.proxy(path: String, request: Request)\n');
    writeFileSync(join(dir, 'datahub-web-react/package.json'), '{\n    "name": "datahub-react-web",\n    "private": true\n}\n');
    return dir;
}

function runApply(...args: string[]) {
    const result = spawnSync('bash', [applySh, ...args], { encoding: 'utf8' });
    return { code: result.status, out: result.stdout, err: result.stderr };
}

const tempDirs: string[] = [];
const track = (dir: string) => {
    tempDirs.push(dir);
    return dir;
};
afterAll(() => tempDirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

describe('datahub-v1.7.0.patch', () => {
    it('is what scripts/build-patch.mjs makes from src/ and datahub/ (one source of truth)', () => {
        expect(patchText).toBe(builder.buildPatch());
    });

    it('is a well-formed unified diff: one small header edit plus new files in one folder', () => {
        const header = files.filter((f) => !f.isNew);
        expect(header.map((f) => f.newPath)).toEqual([HEADER]);
        expect(header[0].oldPath).toBe(`a/${HEADER}`);
        const added = header[0].hunks.flatMap((h) => h.lines.filter((l) => l[0] === '+'));
        const removed = header[0].hunks.flatMap((h) => h.lines.filter((l) => l[0] === '-'));
        expect(removed).toEqual([]);
        expect(added.map((l) => l.slice(1).trim())).toEqual([
            "import RunIngestionHeaderButton from '@app/entityV2/shared/containers/profile/header/RunIngestionButton/RunIngestionHeaderButton';",
            '<RunIngestionHeaderButton />',
        ]);
        // The mount sits inside <TopButtonsWrapper>.
        const mountHunk = header[0].hunks[1].lines.map((l) => l.slice(1).trim());
        expect(mountHunk.indexOf('<RunIngestionHeaderButton />')).toBe(mountHunk.indexOf('<TopButtonsWrapper>') + 1);

        const created = files.filter((f) => f.isNew);
        expect(created.map((f) => f.newPath).sort()).toEqual(
            [builder.ADAPTER_FILE, ...builder.COMPONENT_FILES].map((f: string) => `${DIR}/${f}`).sort(),
        );
        for (const file of created) {
            expect(file.oldPath).toBe('/dev/null');
            expect(file.hunks).toHaveLength(1);
            expect(file.hunks[0].oldStart).toBe(0);
            expect(file.hunks[0].lines.every((l) => l[0] === '+')).toBe(true);
        }
    });

    it('new files import each other only by DataHub alias, and only files the patch adds', () => {
        const names = new Set(files.filter((f) => f.isNew).map((f) => f.newPath.split('/').pop()!.replace(/\.tsx?$/, '')));
        for (const file of files.filter((f) => f.isNew)) {
            const body = file.hunks[0].lines.map((l) => l.slice(1)).join('\n');
            expect(body).not.toMatch(/from '\.\.?\//);
            for (const m of body.matchAll(/from '@app\/entityV2\/shared\/containers\/profile\/header\/RunIngestionButton\/([^']+)'/g)) {
                expect(names.has(m[1]), `${file.newPath} imports ${m[1]}`).toBe(true);
            }
            // Only react, antd and DataHub's own modules.
            for (const m of body.matchAll(/from '([^'@.][^']*)'/g)) expect(['react', 'antd']).toContain(m[1]);
        }
    });

    it('has no source in it that is not ours: the only context lines are in the header edit', () => {
        const header = files.find((f) => f.newPath === HEADER)!;
        const context = header.hunks.flatMap((h) => h.lines.filter((l) => l[0] === ' '));
        expect(context.length).toBeLessThanOrEqual(8);
    });
});

describe('apply.sh', () => {
    it('refuses a directory that is not a DataHub checkout, and says why', () => {
        const dir = track(mkdtempSync(join(tmpdir(), 'not-datahub-')));
        writeFileSync(join(dir, 'package.json'), '{"name": "something-else"}\n');
        const { code, err } = runApply(dir);
        expect(code).toBe(2);
        expect(err).toContain('is not a DataHub checkout');
        expect(err).toContain('missing: datahub-web-react/package.json');
        expect(readdirSync(dir)).toEqual(['package.json']);
    });

    it('refuses a web app that is not DataHub', () => {
        const dir = track(syntheticCheckout());
        writeFileSync(join(dir, 'datahub-web-react/package.json'), '{"name": "other"}\n');
        const { code, err } = runApply(dir);
        expect(code).toBe(2);
        expect(err).toContain('not DataHub');
    });

    it('needs exactly one directory', () => {
        expect(runApply().code).toBe(2);
        expect(runApply('/nonexistent/datahub').err).toContain('is not a directory');
        expect(runApply('--bogus', '/tmp').code).toBe(2);
    });

    it('checks, applies, and then reports already applied', () => {
        const dir = track(syntheticCheckout());
        const before = readFileSync(join(dir, HEADER), 'utf8');

        const check = runApply('--check', dir);
        expect(check.code, check.err).toBe(0);
        expect(check.out).toContain('applies cleanly');
        expect(readFileSync(join(dir, HEADER), 'utf8')).toBe(before);
        expect(existsSync(join(dir, DIR))).toBe(false);

        const applied = runApply(dir);
        expect(applied.code, applied.err).toBe(0);
        expect(applied.out).toContain('applied');
        const after = readFileSync(join(dir, HEADER), 'utf8');
        expect(after.split('\n').length - before.split('\n').length).toBe(2);
        expect(after).toMatch(/<TopButtonsWrapper>\n\s+<RunIngestionHeaderButton \/>\n/);
        for (const file of builder.COMPONENT_FILES as string[]) {
            const expected = builder.rewriteImports(readFileSync(join(root, 'src', file), 'utf8'));
            expect(readFileSync(join(dir, DIR, file), 'utf8')).toBe(expected);
        }
        expect(readFileSync(join(dir, DIR, builder.ADAPTER_FILE), 'utf8')).toBe(
            readFileSync(join(root, 'datahub', builder.ADAPTER_FILE), 'utf8'),
        );

        const again = runApply(dir);
        expect(again.code).toBe(0);
        expect(again.out).toContain('already applied');
    });

    it('applies where the lines moved (offsets), as between DataHub releases', () => {
        const dir = track(syntheticCheckout((text) => `// moved 1\n// moved 2\n// moved 3\n${text}`));
        const { code, err } = runApply(dir);
        expect(code, err).toBe(0);
    });

    it('fails clearly, changing nothing, when the checkout differs where the patch edits', () => {
        const dir = track(
            syntheticCheckout((text) => text.replace('<TopButtonsWrapper>', '<HeaderButtons>').replace(/TopButtonsWrapper/g, 'HeaderButtons')),
        );
        const before = readFileSync(join(dir, HEADER), 'utf8');
        const { code, err } = runApply(dir);
        expect(code).toBe(1);
        expect(err).toContain('does NOT apply');
        expect(err).toContain('DataHub v1.7.0');
        expect(err).toContain('DefaultEntityHeader.tsx');
        expect(readFileSync(join(dir, HEADER), 'utf8')).toBe(before);
        expect(existsSync(join(dir, DIR))).toBe(false);
    });

    it('fails clearly when the files it adds already exist (another version of the patch)', () => {
        const dir = track(syntheticCheckout());
        mkdirSync(join(dir, DIR), { recursive: true });
        writeFileSync(join(dir, DIR, 'api.ts'), 'export {};\n');
        const { code, err } = runApply(dir);
        expect(code).toBe(1);
        expect(err).toContain('already exist');
    });
});

const checkout = process.env.DATAHUB_CHECKOUT;

describe.skipIf(!checkout)('against a real DataHub checkout (DATAHUB_CHECKOUT)', () => {
    it('apply.sh --check accepts it (applies cleanly, or is already applied) and changes nothing', () => {
        const { code, out, err } = runApply('--check', checkout!);
        expect(code, err).toBe(0);
        expect(out).toMatch(/applies cleanly|already applied/);
    });

    it('applies to a copy of its header file', () => {
        const dir = track(mkdtempSync(join(tmpdir(), 'datahub-copy-')));
        for (const path of ['datahub-web-react/package.json', 'datahub-frontend/conf/routes', HEADER]) {
            mkdirSync(join(dir, dirname(path)), { recursive: true });
            cpSync(join(checkout!, path), join(dir, path));
        }
        if (existsSync(join(checkout!, DIR))) cpSync(join(checkout!, DIR), join(dir, DIR), { recursive: true });
        const { code, err } = runApply(dir);
        expect(code, err).toBe(0);
        expect(readFileSync(join(dir, HEADER), 'utf8')).toMatch(/<TopButtonsWrapper>\n\s+<RunIngestionHeaderButton \/>/);
        expect(existsSync(join(dir, DIR, builder.ADAPTER_FILE))).toBe(true);
    });
});
