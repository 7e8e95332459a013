/**
 * The run's parameters as a form (issue 22), drawn from the target's schema: a date picker for `format: date`,
 * a date-and-time picker (UTC) for `date-time`, a select for `enum`, a number field for integers and numbers,
 * a switch for booleans and a text field otherwise. Used by the button's dialog and the micro-frontend panel.
 */
import { Input, Switch, Typography } from 'antd';
import { ChangeEvent } from 'react';

import { FormErrors, FormValues, ParameterProperty, ParameterSchema } from './parameters';

export interface ParametersFormProps {
    schema: ParameterSchema;
    values: FormValues;
    /** Problems to show, by field (the caller decides when: as the user types, after a send). */
    errors: FormErrors;
    onChange: (name: string, value: string | boolean) => void;
    /** Prefix of the fields' ids (one form per dialog). */
    idPrefix: string;
    disabled?: boolean;
}

function fieldLabel(name: string, prop: ParameterProperty, required: boolean): string {
    return `${prop.title || name}${required ? '' : ' (optional)'}${prop.format === 'date-time' ? ' (UTC)' : ''}`;
}

function Field(props: {
    name: string;
    prop: ParameterProperty;
    id: string;
    value: string | boolean;
    error?: string;
    required: boolean;
    disabled?: boolean;
    onChange: (value: string | boolean) => void;
}) {
    const { name, prop, id, value, error, required, disabled } = props;
    const describedBy = [prop.description ? `${id}-help` : null, error ? `${id}-error` : null].filter(Boolean).join(' ') || undefined;
    const common = {
        id,
        name,
        disabled,
        'aria-invalid': error ? true : undefined,
        'aria-required': required || undefined,
        'aria-describedby': describedBy,
        'data-testid': `run-parameter-${name}`,
    };
    const onText = (event: ChangeEvent<HTMLInputElement | HTMLSelectElement>) => props.onChange(event.target.value);
    let control;
    if (prop.type === 'boolean') {
        control = <Switch {...common} checked={value === true} onChange={(checked) => props.onChange(checked)} />;
    } else if (prop.enum) {
        // A native select: keyboard and screen readers work without antd's portal, and a test can pick a value.
        control = (
            <select {...common} className="ant-input" value={String(value)} onChange={onText} style={{ height: 32 }}>
                {(!required || value === '') && <option value="">{required ? 'Choose…' : '(none)'}</option>}
                {prop.enum.map((option) => (
                    <option key={String(option)} value={String(option)}>
                        {String(option)}
                    </option>
                ))}
            </select>
        );
    } else if (prop.type === 'integer' || prop.type === 'number') {
        control = (
            <Input
                {...common}
                type="number"
                value={String(value)}
                onChange={onText}
                step={prop.type === 'integer' ? 1 : 'any'}
                min={prop.minimum ?? prop.exclusiveMinimum}
                max={prop.maximum ?? prop.exclusiveMaximum}
            />
        );
    } else if (prop.format === 'date') {
        control = <Input {...common} type="date" value={String(value)} onChange={onText} />;
    } else if (prop.format === 'date-time') {
        control = <Input {...common} type="datetime-local" value={String(value)} onChange={onText} step={1} />;
    } else {
        control = <Input {...common} value={String(value)} onChange={onText} maxLength={prop.maxLength} />;
    }
    return (
        <div style={{ marginBottom: 12 }} data-testid={`run-parameter-field-${name}`}>
            <label htmlFor={id} style={{ display: 'block', marginBottom: 4 }}>
                {fieldLabel(name, prop, required)}
            </label>
            {control}
            {prop.description && (
                <Typography.Text id={`${id}-help`} type="secondary" style={{ display: 'block', fontSize: 12 }}>
                    {prop.description}
                </Typography.Text>
            )}
            {error && (
                <Typography.Text id={`${id}-error`} type="danger" role="alert" style={{ display: 'block', fontSize: 12 }}>
                    {`${prop.title || name} ${error}`}
                </Typography.Text>
            )}
        </div>
    );
}

export function ParametersForm(props: ParametersFormProps) {
    const { schema, values, errors, idPrefix, disabled } = props;
    const required = new Set(schema.required ?? []);
    return (
        <fieldset data-testid="run-parameters" style={{ border: 0, padding: 0, margin: '0 0 12px' }} disabled={disabled}>
            <legend style={{ fontSize: 14, marginBottom: 8 }}>{schema.title || 'Parameters'}</legend>
            {schema.description && <Typography.Paragraph type="secondary">{schema.description}</Typography.Paragraph>}
            {Object.entries(schema.properties).map(([name, prop]) => (
                <Field
                    key={name}
                    name={name}
                    prop={prop}
                    id={`${idPrefix}-param-${name}`}
                    value={values[name] ?? (prop.type === 'boolean' ? false : '')}
                    error={errors[name]}
                    required={required.has(name)}
                    disabled={disabled}
                    onChange={(value) => props.onChange(name, value)}
                />
            ))}
        </fieldset>
    );
}

export default ParametersForm;
