// The `model` field of a multipart/form-data body (OpenAI's audio uploads), found without decoding the files in it.

/** Where a multipart body's `model` field lies: its value and the byte range of that value. */
export interface MultipartField {
  value: string;
  start: number;
  end: number;
}

/** Why an upload with several `model` fields is refused. */
export const SEVERAL_MODEL_FIELDS = 'the upload has more than one `model` field; send one';

/** Why an upload whose form could be read two ways is refused. */
export const AMBIGUOUS_FORM = 'the upload gives its boundary, a part\'s Content-Disposition or a part\'s name more than once; give each once';

/** A multipart body the proxy refuses to read for its model: vLLM might read it otherwise (several, ambiguous). */
export interface MultipartRefusal {
  refused: string;
}

/**
 * True for a content type that names multipart/form-data anywhere. Why anywhere: Starlette strips Python's white space
 * (U+0085, U+001C-U+001F among it) around the type, which \s does not match; a type the proxy took for another would
 * pass unread, its model unchecked. A type with such characters is then refused by multipartModel.
 */
export function isMultipart(type: string | undefined): boolean {
  return type !== undefined && /multipart\/form-data/i.test(type);
}

/**
 * A header value's parameters as vLLM's form reader (Starlette, python-multipart) reads them: split at each `;` outside
 * a quoted string, the name before `=` trimmed and lower-cased, the value trimmed and unquoted. Every value of a name,
 * in order; null for the extended form of one it reads (`name*`, RFC 2231), which RFC 7578 forbids and python-multipart's versions read
 * differently (0.0.7-0.0.21 decode it, later ones refuse it). A value with a backslash or a character outside printable
 * ASCII never gets here (`unreadable`).
 */
/** The parameters the proxy reads: an extended form of one of them (`name*=`, RFC 2231) makes the header unreadable. */
const READ_PARAMS: ReadonlySet<string> = new Set(['name', 'boundary', 'charset']);

function headerParams(value: string): Map<string, string[]> | null {
  const params = new Map<string, string[]>();
  const segments: string[] = [];
  let from = 0;
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === '"') quoted = !quoted;
    else if (c === ';' && !quoted) {
      segments.push(value.slice(from, i));
      from = i + 1;
    }
  }
  segments.push(value.slice(from));
  for (const segment of segments.slice(1)) {
    const eq = segment.indexOf('=');
    if (eq < 0) continue;
    const name = segment.slice(0, eq).trim().toLowerCase();
    if (name.includes('*')) {
      // Only the extended form of a parameter read here; a `filename*` (older clients' non-ASCII file names) is left out.
      if (READ_PARAMS.has(name.slice(0, name.indexOf('*')))) return null;
      continue;
    }
    let v = segment.slice(eq + 1).trim();
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    params.set(name, [...(params.get(name) ?? []), v]);
  }
  return params;
}

/** Why an upload whose form uses escapes, odd characters, extended parameters or a charset is refused. */
export const UNREADABLE_FORM = 'the upload\'s Content-Type or a part\'s Content-Disposition holds a backslash, a control or non-ASCII character outside quotes, or a `name*` parameter, or the form has a charset other than UTF-8; send plain parameters in UTF-8';

/** Why an upload with bytes before its first boundary is refused. */
export const PREAMBLE_FORM = 'the upload does not begin with its first boundary (--BOUNDARY); send nothing before it';

/**
 * Why a header value is refused before its parameters are read. A backslash: python-multipart's versions tell a quoted
 * string's end differently around `\"` (one counts quotes over the whole parameter, another reads escapes), so
 * `name=a\"; name="model"` is one parameter to one reader and two to another. A control or non-ASCII character outside
 * quotes: Python's strip() takes U+0085 and U+001C-U+001F for white space and JavaScript's trim() does not, so
 * `name="model"\x85` names the model field to vLLM only. No client needs either there (a file name in quotes may hold
 * any UTF-8).
 */
function unreadable(value: string): MultipartRefusal | null {
  if (value.includes('\\')) return { refused: UNREADABLE_FORM };
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x22) quoted = !quoted;
    else if (!quoted && ((c < 0x20 && c !== 0x09) || c >= 0x7f)) return { refused: UNREADABLE_FORM };
  }
  return null;
}

/**
 * The boundary of a multipart content type; null when it has none; a refusal when it has two (which one is vLLM's?),
 * an escape, or a charset other than UTF-8 (Starlette decodes the names and values with it: in EBCDIC, bytes the proxy
 * reads as one name are another).
 */
function boundaryOf(type: string): string | null | MultipartRefusal {
  const refused = unreadable(type);
  if (refused !== null) return refused;
  const params = headerParams(type);
  if (params === null) return { refused: UNREADABLE_FORM };
  const charset = params.get('charset');
  if (charset !== undefined && (charset.length > 1 || !/^(utf-?8|us-ascii|ascii)$/i.test(charset[0]!))) return { refused: UNREADABLE_FORM };
  const given = params.get('boundary');
  if (given === undefined || given[0] === '') return null;
  return given.length > 1 ? { refused: AMBIGUOUS_FORM } : given[0]!;
}

/** A part's form name from its headers (the Content-Disposition's `name`); a refusal when it is given twice. */
function partName(headers: string): string | null | MultipartRefusal {
  const dispositions = headers.split('\r\n').filter((line) => /^content-disposition[ \t]*:/i.test(line));
  if (dispositions.length === 0) return null;
  if (dispositions.length > 1) return { refused: AMBIGUOUS_FORM };
  const line = dispositions[0]!;
  const refused = unreadable(line);
  if (refused !== null) return refused;
  const params = headerParams(line.slice(line.indexOf(':') + 1));
  if (params === null) return { refused: UNREADABLE_FORM };
  const names = params.get('name');
  if (names === undefined) return null;
  if (names.length > 1) return { refused: AMBIGUOUS_FORM };
  // `name=<model>`: email.utils.unquote, which python-multipart's older versions use, takes off angle brackets too.
  return /^<.*>$/.test(names[0]!) ? { refused: UNREADABLE_FORM } : names[0]!;
}

/**
 * The part named `model` (`Content-Disposition: form-data; name="model"`), read as vLLM's form reader reads it; null
 * when absent or unreadable; a refusal when there are several (Starlette takes the last, so checking any one of them
 * would let the other through unchecked: a key's allowlist) or the form could be read two ways.
 */
export function multipartModel(raw: Buffer, contentType: string): MultipartField | null | MultipartRefusal {
  const boundary = boundaryOf(contentType);
  if (boundary === null || typeof boundary === 'object') return boundary;
  const delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1');
  // The first delimiter opens the body, without the CRLF before it. Why nothing else is read: python-multipart skips
  // CR and LF before it (a version one by one, another up to the first `-`) where a preamble would be skipped here
  // up to a CRLF-led boundary, so `\n--B` opened the model part to vLLM only. Clients send no preamble.
  if (!raw.subarray(0, delimiter.length - 2).equals(delimiter.subarray(2))) return raw.length === 0 ? null : { refused: PREAMBLE_FORM };
  let partStart = delimiter.length - 2;
  let found: MultipartField | null = null;
  for (;;) {
    // `--` after the boundary closes the body.
    if (raw[partStart] === 0x2d && raw[partStart + 1] === 0x2d) return found;
    const headersEnd = raw.indexOf('\r\n\r\n', partStart, 'latin1');
    if (headersEnd < 0) return found;
    const next = raw.indexOf(delimiter, headersEnd + 4);
    if (next < 0) return found;
    // The name, not a `filename="model"`.
    const name = partName(raw.toString('latin1', partStart, headersEnd));
    if (name !== null && typeof name === 'object') return name;
    if (name === 'model') {
      if (found !== null) return { refused: SEVERAL_MODEL_FIELDS };
      const start = headersEnd + 4;
      found = { value: raw.toString('utf8', start, next), start, end: next };
    }
    partStart = next + delimiter.length;
  }
}
