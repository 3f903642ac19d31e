// The `model` field of a multipart/form-data body (OpenAI's audio uploads), found without decoding the files in it.

/** Where a multipart body's `model` field lies: its value and the byte range of that value. */
export interface MultipartField {
  value: string;
  start: number;
  end: number;
}

/** Why an upload with several `model` fields is refused. */
export const SEVERAL_MODEL_FIELDS = 'the upload has more than one `model` field; send one';

/** True for a multipart/form-data content type. */
export function isMultipart(type: string | undefined): boolean {
  return type !== undefined && /^\s*multipart\/form-data\b/i.test(type);
}

/** The boundary of a multipart content type, or null when it has none. */
function boundaryOf(type: string): string | null {
  const m = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(type);
  return m === null ? null : (m[1] ?? m[2] ?? null);
}

/**
 * The part named `model` (`Content-Disposition: form-data; name="model"`); null when absent or unreadable; `several`
 * when more than one: vLLM's form reader (Starlette) takes the last, so checking any one of them would let the other
 * through unchecked (a key's allowlist).
 */
export function multipartModel(raw: Buffer, contentType: string): MultipartField | null | 'several' {
  const boundary = boundaryOf(contentType);
  if (boundary === null) return null;
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
    const headers = raw.toString('latin1', partStart, headersEnd);
    // `; name=`, so that `filename="model"` does not count.
    if (/^content-disposition:[^\r\n]*;\s*name="?model"?\s*(?:;|\r|$)/im.test(headers)) {
      if (found !== null) return 'several';
      const start = headersEnd + 4;
      found = { value: raw.toString('utf8', start, next), start, end: next };
    }
    partStart = next + delimiter.length;
  }
}
