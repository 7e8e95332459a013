/**
 * Run parameters in the browser: the schema `GET /api/ingestion/targets` returns (the JSON Schema subset of
 * common/lambda_trigger/parameters.py), the form's initial values, inline validation and the object sent as
 * `parameters` with the run. The api and the consumer check again; this only saves a round trip.
 */

export type ParameterType = 'string' | 'integer' | 'number' | 'boolean';
export type ParameterValue = string | number | boolean;

export interface ParameterProperty {
    type: ParameterType;
    title?: string;
    description?: string;
    default?: ParameterValue;
    enum?: ParameterValue[];
    format?: 'date' | 'date-time';
    pattern?: string;
    minLength?: number;
    maxLength?: number;
    minimum?: number;
    maximum?: number;
    exclusiveMinimum?: number;
    exclusiveMaximum?: number;
}

export interface ParameterSchema {
    type?: 'object';
    title?: string;
    description?: string;
    properties: Record<string, ParameterProperty>;
    required?: string[];
}

/** What the form holds: text for text-like inputs (what the user typed), booleans for switches. */
export type FormValues = Record<string, string | boolean>;
export type FormErrors = Record<string, string>;

/** Mirrors MAX_STRING_LENGTH on the server. */
export const MAX_STRING_LENGTH = 1000;

/** `2026-01-31T10:00:00Z` -> the `datetime-local` input's `2026-01-31T10:00` (in UTC, as labelled). */
function dateTimeInputValue(value: string): string {
    const match = /^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2})/.exec(value);
    return match ? `${match[1]}T${match[2]}` : '';
}

export function initialValues(schema: ParameterSchema, previous?: Record<string, unknown> | null): FormValues {
    const values: FormValues = {};
    for (const [name, prop] of Object.entries(schema.properties)) {
        const given = previous && name in previous ? previous[name] : prop.default;
        if (prop.type === 'boolean') {
            values[name] = given === true;
        } else if (given === undefined || given === null) {
            values[name] = '';
        } else if (prop.format === 'date-time') {
            values[name] = dateTimeInputValue(String(given));
        } else {
            values[name] = String(given);
        }
    }
    return values;
}

function isRequired(schema: ParameterSchema, name: string): boolean {
    return (schema.required ?? []).includes(name);
}

function validDate(text: string): boolean {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) return false;
    const [y, m, d] = text.split('-').map(Number);
    const date = new Date(Date.UTC(y, m - 1, d));
    return date.getUTCFullYear() === y && date.getUTCMonth() === m - 1 && date.getUTCDate() === d;
}

/** The typed value of one field, or an error message; `undefined` when left empty. */
export function parseField(prop: ParameterProperty, raw: string | boolean): { value?: ParameterValue; error?: string } {
    if (prop.type === 'boolean') return { value: raw === true };
    const text = String(raw);
    if (text === '') return {};
    let value: ParameterValue = text;
    if (prop.type === 'integer' || prop.type === 'number') {
        const number = Number(text);
        if (!Number.isFinite(number) || text.trim() === '') return { error: `must be ${prop.type === 'integer' ? 'an integer' : 'a number'}` };
        if (prop.type === 'integer' && !Number.isInteger(number)) return { error: 'must be an integer' };
        value = number;
        if (prop.minimum !== undefined && number < prop.minimum) return { error: `must be >= ${prop.minimum}` };
        if (prop.maximum !== undefined && number > prop.maximum) return { error: `must be <= ${prop.maximum}` };
        if (prop.exclusiveMinimum !== undefined && number <= prop.exclusiveMinimum) return { error: `must be > ${prop.exclusiveMinimum}` };
        if (prop.exclusiveMaximum !== undefined && number >= prop.exclusiveMaximum) return { error: `must be < ${prop.exclusiveMaximum}` };
    } else {
        if (prop.format === 'date' && !validDate(text)) return { error: 'must be a date (YYYY-MM-DD)' };
        if (prop.format === 'date-time') {
            // The input gives a wall-clock reading without a zone; it is labelled and sent as UTC.
            const match = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(:\d{2})?$/.exec(text);
            if (!match || !validDate(match[1])) return { error: 'must be a date and time' };
            value = `${match[1]}T${match[2]}${match[3] ?? ':00'}Z`;
        }
        const length = Array.from(text).length;
        const max = Math.min(prop.maxLength ?? MAX_STRING_LENGTH, MAX_STRING_LENGTH);
        if (length > max) return { error: `must be at most ${max} characters` };
        if (prop.minLength !== undefined && length < prop.minLength) return { error: `must be at least ${prop.minLength} characters` };
        if (prop.pattern !== undefined) {
            try {
                if (!new RegExp(prop.pattern, 'u').test(text)) return { error: `must match the pattern ${prop.pattern}` };
            } catch {
                // A pattern JavaScript cannot read: the server's check decides.
            }
        }
    }
    if (prop.enum && !prop.enum.some((option) => option === value)) {
        return { error: `must be one of: ${prop.enum.map((option) => JSON.stringify(option)).join(', ')}` };
    }
    return { value };
}

/** Every field's problem (empty when the form may be sent) and the object to send. */
export function checkForm(schema: ParameterSchema, values: FormValues): { errors: FormErrors; parameters: Record<string, ParameterValue> } {
    const errors: FormErrors = {};
    const parameters: Record<string, ParameterValue> = {};
    for (const [name, prop] of Object.entries(schema.properties)) {
        const parsed = parseField(prop, values[name] ?? '');
        if (parsed.error) errors[name] = parsed.error;
        else if (parsed.value !== undefined) parameters[name] = parsed.value;
        else if (isRequired(schema, name)) errors[name] = 'is required';
    }
    return { errors, parameters };
}

/** `{"start": "2026-01-31", "full": true}` -> `start=2026-01-31, full=true` (the last-run line). */
export function describeParameters(parameters: Record<string, unknown> | null | undefined): string | null {
    if (!parameters) return null;
    const parts = Object.entries(parameters).map(([name, value]) => `${name}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
    return parts.length ? parts.join(', ') : null;
}
