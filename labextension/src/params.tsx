// The parameters form, typed from the parameters cell's defaults: numbers for int/float (1.0 stays
// "1.0"), a checkbox for bool, text for str, checked text for lists and dicts. Values go to the
// server as text, the form `same-nb run -p NAME VALUE` takes (Python literals, JSON or YAML).
import * as React from 'react';

import { IParameter } from './api';

/** A Python float keeps its ".0": JSON gave us 1 for 1.0. */
export function defaultText(p: IParameter): string {
  const value = p.default;
  if (value === null || value === undefined) {
    return 'None';
  }
  if (typeof value === 'boolean') {
    return value ? 'True' : 'False';
  }
  if (typeof value === 'number') {
    return p.type === 'float' && Number.isInteger(value) && Math.abs(value) < 1e16
      ? value.toFixed(1)
      : String(value);
  }
  if (typeof value === 'string') {
    return value;
  }
  return literalText(value);
}

/** Lists and dicts as readable JSON: `[1, 2]`, `{"a": 1}` (the server reads JSON and Python literals). */
function literalText(value: unknown): string {
  if (Array.isArray(value)) {
    return `[${value.map(literalText).join(', ')}]`;
  }
  if (value && typeof value === 'object') {
    return `{${Object.entries(value)
      .map(([k, v]) => `${JSON.stringify(k)}: ${literalText(v)}`)
      .join(', ')}}`;
  }
  return JSON.stringify(value);
}

const WHOLE = /^[-+]?\d(_?\d)*$/;
const NUMBER = /^[-+]?((\d(_?\d)*)(\.(\d(_?\d)*)?)?|\.\d(_?\d)*)([eE][-+]?\d(_?\d)*)?$/;

/** Python literals (and JSON): strings in either quotes, numbers, True/False/None, lists, tuples, dicts. */
export function parseLiteral(text: string): unknown {
  let i = 0;
  const s = text;
  const fail = (what: string): never => {
    throw new Error(what);
  };
  const space = () => {
    while (i < s.length && /\s/.test(s[i])) {
      i++;
    }
  };
  const value = (): unknown => {
    space();
    const c = s[i];
    if (c === '[' || c === '(') {
      const close = c === '[' ? ']' : ')';
      i++;
      const out: unknown[] = [];
      space();
      while (s[i] !== close) {
        out.push(value());
        space();
        if (s[i] === ',') {
          i++;
          space();
        } else if (s[i] !== close) {
          fail(`expected "," or "${close}"`);
        }
      }
      i++;
      return out;
    }
    if (c === '{') {
      i++;
      const out: Record<string, unknown> = {};
      space();
      while (s[i] !== '}') {
        const key = value();
        if (typeof key !== 'string') {
          fail('dict keys must be text in quotes');
        }
        space();
        if (s[i] !== ':') {
          fail('expected ":"');
        }
        i++;
        out[key as string] = value();
        space();
        if (s[i] === ',') {
          i++;
          space();
        } else if (s[i] !== '}') {
          fail('expected "," or "}"');
        }
      }
      i++;
      return out;
    }
    if (c === '"' || c === "'") {
      i++;
      let out = '';
      while (i < s.length && s[i] !== c) {
        if (s[i] === '\\' && i + 1 < s.length) {
          const next = s[i + 1];
          out += ({ n: '\n', t: '\t', r: '\r' } as Record<string, string>)[next] ?? next;
          i += 2;
        } else {
          out += s[i++];
        }
      }
      if (s[i] !== c) {
        fail('a quote is not closed');
      }
      i++;
      return out;
    }
    const word = /^[A-Za-z_]+|^[-+0-9.eE_]+/.exec(s.slice(i));
    if (!word) {
      return fail(i >= s.length ? 'it ends too early' : `unexpected "${s[i]}"`);
    }
    i += word[0].length;
    const w = word[0];
    const words: Record<string, unknown> = { True: true, true: true, False: false, false: false, None: null, null: null };
    if (w in words) {
      return words[w];
    }
    if (NUMBER.test(w)) {
      return Number(w.replace(/_/g, ''));
    }
    return fail(`"${w}" is not a value (put text in quotes)`);
  };
  const result = value();
  space();
  if (i < s.length) {
    fail(`unexpected "${s[i]}"`);
  }
  return result;
}

/** Why a value cannot be given to a parameter, in plain words; null when it can. */
export function paramProblem(p: IParameter, text: string): string | null {
  const t = text.trim();
  switch (p.type) {
    case 'int':
      if (!t) {
        return `${p.name} needs a whole number`;
      }
      return WHOLE.test(t) ? null : `${p.name} must be a whole number (like ${defaultText(p)})`;
    case 'float':
      if (!t) {
        return `${p.name} needs a number`;
      }
      return NUMBER.test(t) && Number.isFinite(Number(t.replace(/_/g, '')))
        ? null
        : `${p.name} must be a number (like ${defaultText(p)})`;
    case 'bool':
      return /^(true|false)$/i.test(t) ? null : `${p.name} must be True or False`;
    case 'list':
    case 'dict': {
      const kind = p.type === 'list' ? 'list' : 'dict';
      const example = p.type === 'list' ? '[1, 2, 3]' : '{"a": 1}';
      let value: unknown;
      try {
        value = parseLiteral(t);
      } catch {
        return `${p.name} must be a ${kind}, e.g. ${example}`;
      }
      const ok = p.type === 'list' ? Array.isArray(value) : !!value && typeof value === 'object' && !Array.isArray(value);
      return ok ? null : `${p.name} must be a ${kind}, e.g. ${example}`;
    }
    default:
      return null; // str and None take any text
  }
}

export function ParamsForm(props: {
  params: IParameter[];
  values: Record<string, string>;
  defaults: Record<string, string>;
  onChange: (name: string, value: string) => void;
}) {
  const { params, values, defaults, onChange } = props;
  return (
    <div className="same-nb-params">
      {params.map(p => {
        const value = values[p.name] ?? defaults[p.name] ?? '';
        const problem = paramProblem(p, value);
        const changed = value !== defaults[p.name];
        const id = `same-nb-param-${p.name}`;
        let input: JSX.Element;
        if (p.type === 'bool') {
          input = (
            <input
              id={id}
              type="checkbox"
              name={p.name}
              checked={/^true$/i.test(value.trim())}
              onChange={e => onChange(p.name, e.target.checked ? 'True' : 'False')}
            />
          );
        } else {
          input = (
            <input
              id={id}
              className={`jp-mod-styled same-nb-param-input ${problem ? 'same-nb-invalid' : ''}`}
              // text, not type=number: a number input would turn "1.0" into "1" and hide bad input
              type="text"
              inputMode={p.type === 'int' ? 'numeric' : p.type === 'float' ? 'decimal' : undefined}
              spellCheck={false}
              name={p.name}
              value={value}
              aria-invalid={!!problem}
              onChange={e => onChange(p.name, e.target.value)}
            />
          );
        }
        return (
          <div key={p.name} className="same-nb-param-row" data-param={p.name}>
            <label className="same-nb-param" htmlFor={id} title={`${p.type}, default ${defaults[p.name]}`}>
              <span className="same-nb-param-name">{p.name}</span>
              {input}
              <span className="same-nb-param-type">{p.type === 'NoneType' ? 'any' : p.type}</span>
            </label>
            {problem ? <div className="same-nb-param-problem">{problem}</div> : null}
            {changed && !problem ? (
              <button
                className="same-nb-link same-nb-param-reset"
                title={`Back to the default, ${defaults[p.name]}`}
                onClick={() => onChange(p.name, defaults[p.name])}
              >
                {`reset to ${defaults[p.name].length > 24 ? 'default' : defaults[p.name]}`}
              </button>
            ) : null}
          </div>
        );
      })}
    </div>
  );
}
