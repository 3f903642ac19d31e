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

/** True for a multipart/form-data content type. */
export function isMultipart(type: string | undefined): boolean {
  return type !== undefined && /^\s*multipart\/form-data\b/i.test(type);
}

/**
 * A header value's parameters as vLLM's form reader (Starlette, python-multipart) reads them: split at each `;` outside
 * a quoted string, the name before `=` trimmed and lower-cased, the value trimmed and unquoted; `name*` forms are left
 * out (RFC 7578 forbids them there). Every value of a name, in order. A value with a backslash never gets here
 * (`escaped`): readers differ on escapes, so none is read.
 */
function headerParams(value: string): Map<string, string[]> {
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
    if (name.includes('*')) continue;
    let v = segment.slice(eq + 1).trim();
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    params.set(name, [...(params.get(name) ?? []), v]);
  }
  return params;
}

/** Why an upload whose form uses escapes or a charset is refused. */
export const UNREADABLE_FORM = 'the upload\'s Content-Type or a part\'s Content-Disposition holds a backslash, or the form has a charset other than UTF-8; send plain parameters in UTF-8';

/**
 * Why a header value is refused before its parameters are read: a backslash. Why: python-multipart's versions tell a
 * quoted string's end differently around `\"` (one counts quotes over the whole parameter, another reads escapes), so
 * `name=a\"; name="model"` is one parameter to one reader and two to another; no client needs one there.
 */
const escaped = (value: string): MultipartRefusal | null => (value.includes('\\') ? { refused: UNREADABLE_FORM } : null);

/**
 * The boundary of a multipart content type; null when it has none; a refusal when it has two (which one is vLLM's?),
 * an escape, or a charset other than UTF-8 (Starlette decodes the names and values with it: in EBCDIC, bytes the proxy
 * reads as one name are another).
 */
function boundaryOf(type: string): string | null | MultipartRefusal {
  const refused = escaped(type);
  if (refused !== null) return refused;
  const params = headerParams(type);
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
  const refused = escaped(line);
  if (refused !== null) return refused;
  const names = headerParams(line.slice(line.indexOf(':') + 1)).get('name');
  if (names === undefined) return null;
  return names.length > 1 ? { refused: AMBIGUOUS_FORM } : names[0]!;
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
  // The first delimiter usually opens the body, without the CRLF before it.
  const opens = raw.subarray(0, delimiter.length - 2).equals(delimiter.subarray(2));
  const first = opens ? 0 : raw.indexOf(delimiter);
  if (first < 0) return null;
  let partStart = first + (opens ? delimiter.length - 2 : delimiter.length);
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
