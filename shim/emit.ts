// The only code that turns values into C.
//
// Every value that reaches the generated program passes through one of the
// emitters below and comes out as a `CCode`. The `c` tagged template accepts
// nothing else, so a user string cannot be pasted into the C text by mistake:
// it must be emitted as a literal first. User text only ever becomes a string
// literal; never a comment, a `#` line or an identifier.

import { ConfigError } from '../launcher/errors.js'

// Set once by CCode's static block: the only way to make a CCode, and it is
// not exported.
let trusted: (text: string) => CCode

/** A piece of C that an emitter produced (or the template's own text). */
export class CCode {
  private constructor(readonly text: string) {}
  static {
    trusted = (text) => new CCode(text)
  }
  /** Emitted pieces, one after the other. */
  static join(parts: readonly CCode[]): CCode {
    for (const part of parts) if (!(part instanceof CCode)) throw new TypeError('CCode.join: a part is not CCode')
    return trusted(parts.map((part) => part.text).join(''))
  }
  toString(): string {
    return this.text
  }
}

/**
 * A C string literal holding exactly the UTF-8 bytes of `value`.
 *
 * Printable ASCII passes, except `"` and `\` (they would end or escape the
 * literal) and `?` (trigraphs: `??/` is a backslash to an old compiler).
 * Every other byte is a three-digit octal escape: octal stops after three
 * digits, while `\x` would swallow any hex digit that follows.
 */
export function cString(value: string): CCode {
  if (!value.isWellFormed()) throw new ConfigError('string', 'is not well-formed Unicode (lone surrogate)')
  let out = '"'
  for (const byte of Buffer.from(value, 'utf8')) {
    if (byte === 0) throw new ConfigError('string', 'must not contain a NUL byte')
    if (byte === 0x22 || byte === 0x5c || byte === 0x3f) out += `\\${String.fromCharCode(byte)}`
    else if (byte >= 0x20 && byte <= 0x7e) out += String.fromCharCode(byte)
    else out += `\\${byte.toString(8).padStart(3, '0')}`
  }
  return trusted(`${out}"`)
}

/** A non-negative integer constant. */
export function cInt(value: number): CCode {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`not a C integer constant: ${value}`)
  return trusted(String(value))
}

/**
 * A C constant's name from hostshim's own tables (errno names such as
 * ENOENT), never from a config: upper case, digits and underscores only.
 */
export function cConstant(name: string): CCode {
  if (!/^[A-Z][A-Z0-9_]*$/.test(name)) throw new RangeError(`not a C constant name: ${JSON.stringify(name)}`)
  return trusted(name)
}

/** 1 or 0. */
export function cBool(value: boolean): CCode {
  return trusted(value ? '1' : '0')
}

/**
 * `"a\000b\000"`: non-empty strings one after the other, each ending in a
 * NUL, the list ending in the literal's own NUL. Unlike an array of pointers
 * it needs no relocation: a static-PIE shim stays smaller.
 */
export function cStringList(values: readonly string[]): CCode {
  const parts = values.map((v) => {
    if (v === '') throw new RangeError('cStringList: an empty string would end the list')
    return cString(v).text.slice(1, -1)
  })
  return trusted(`"${parts.map((p) => `${p}\\000`).join('')}"`)
}

/** `{ "a", "b", 0 }`: a NULL-terminated initialiser for `const char *const x[]`. */
export function cStringArray(values: readonly string[]): CCode {
  return trusted(`{ ${[...values.map((v) => cString(v).text), '0'].join(', ')} }`)
}

/**
 * The template tag: literal parts are the template author's C, taken raw so
 * that `'\n'` in the template is `'\n'` in the C; every interpolated value
 * must already be CCode.
 */
export function c(strings: TemplateStringsArray, ...values: CCode[]): CCode {
  const raw = strings.raw
  let out = raw[0] ?? ''
  values.forEach((value, i) => {
    if (!(value instanceof CCode)) {
      throw new TypeError(`c\`\`: interpolation ${i} is ${typeof value}, not CCode; emit it with cString/cInt first`)
    }
    out += value.text + (raw[i + 1] ?? '')
  })
  return trusted(out)
}
