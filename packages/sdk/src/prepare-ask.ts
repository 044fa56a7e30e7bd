import { isImageId } from '@magma-som/schemas/plain';
import { AskFieldsSchema } from './contract/ask-fields.js';
import type { ValidationIssue } from './contract/ask-fields.js';
import type { AskFieldsInput, AskRequestInput, ErrorIssue } from './contract/types.js';
import { InvalidInputError, InvalidMarksError } from './errors.js';
import {
  checkImageStringSchema,
  imageAsBytes,
  imageAsString,
  imageByteLength,
  loadImage,
} from './image-source.js';
import type { ImageSource, ReadImageFile } from './image-source.js';
import { normalizeMarks } from './marks.js';
import type { MarkInput } from './marks.js';

/** A Set-of-Mark question as the SDK accepts it. */
export interface AskInput extends Omit<AskFieldsInput, 'marks'> {
  readonly image: ImageSource;
  /** Numbered boxes; see MarkInput for the accepted forms and how unlabelled ones are numbered. */
  readonly marks?: readonly MarkInput[];
}

/** A validated ask, in the form it goes over the wire. */
export type PreparedAsk =
  | { readonly route: 'json'; readonly request: AskRequestInput }
  | { readonly route: 'upload'; readonly form: FormData; readonly fields: AskFieldsInput };

/**
 * Validates everything but the pixels locally (no network for a bad mark or prompt) and picks
 * the route: JSON with base64 for small images, a multipart upload above `uploadThresholdBytes`.
 */
export async function prepareAsk(
  input: AskInput,
  options: { uploadThresholdBytes: number; allowUpload: boolean; readFile: ReadImageFile },
): Promise<PreparedAsk> {
  if (typeof input !== 'object' || input === null)
    throw new InvalidInputError('ask() needs an object');
  const { image: source, marks, ...rest } = input;
  const fields = dropUndefined({
    ...rest,
    marks: marks === undefined ? undefined : normalizeMarks(marks),
  });
  const parsed = AskFieldsSchema.safeParse(fields);
  if (!parsed.success) throw validationError(parsed.error);

  // an id of an image stored with images.upload goes as it is
  if (typeof source === 'string' && isImageId(source))
    return { route: 'json', request: { ...(fields as AskFieldsInput), image: source } };
  const image = await loadImage(source, options.readFile);
  if (options.allowUpload && imageByteLength(image) > options.uploadThresholdBytes) {
    const { bytes, mediaType } = imageAsBytes(image);
    const form = new FormData();
    const extension = mediaType.slice('image/'.length);
    form.append('image', new Blob([bytes], { type: mediaType }), `image.${extension}`);
    form.append('request', JSON.stringify(fields));
    return { route: 'upload', form, fields: fields as AskFieldsInput };
  }
  const imageString = imageAsString(image);
  // loadImage checked a given string's form, and base64 written from bytes is well-formed
  checkImageStringSchema(imageString, { formChecked: true });
  return { route: 'json', request: { ...(fields as AskFieldsInput), image: imageString } };
}

function validationError(error: {
  issues: readonly ValidationIssue[];
}): InvalidInputError | InvalidMarksError {
  const issues: ErrorIssue[] = error.issues.map((issue) => ({
    path: issue.path.map((key) => (typeof key === 'symbol' ? String(key) : key)),
    message: issue.message,
  }));
  const message = issues.map((issue) => `${formatPath(issue.path)}: ${issue.message}`).join('; ');
  const aboutMarks = issues.every((issue) => issue.path[0] === 'marks');
  return aboutMarks
    ? new InvalidMarksError(message, { issues })
    : new InvalidInputError(message, { issues });
}

/** ['marks', 1, 'x2'] -> "marks[1].x2" */
function formatPath(path: readonly (string | number)[]): string {
  if (path.length === 0) return 'request';
  return path
    .map((key, i) => (typeof key === 'number' ? `[${key}]` : i === 0 ? key : `.${key}`))
    .join('');
}

function dropUndefined<T extends Record<string, unknown>>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
