import type { MarkedImage, ServerInfo } from '@magma-som/sdk';
import exampleSceneUrl from '../../../examples/assets/shapes.png?url';
import { AskView } from './ask/ask-view.js';
import { reportError } from './ask/error-text.js';
import { Connection, serverBaseUrl } from './connection/connection.js';
import { byId, isTyping } from './dom.js';
import { listenForImages } from './image/image-input.js';
import { ImageRejectedError, openImage } from './image/open-image.js';
import type { OpenedImage } from './image/open-image.js';
import { MarkEditor } from './marks/mark-editor.js';
import { MarkList } from './marks/mark-list.js';
import { MarkStore } from './marks/mark-store.js';

const connection = new Connection(serverBaseUrl(window.location));
const store = new MarkStore();
const status = byId('server-status');
const stage = byId('stage');
const photo = byId<HTMLImageElement>('photo');
const markedPhoto = byId<HTMLImageElement>('marked-photo');
const overlay = byId('overlay');
const imageError = byId('image-error');
const fileInput = byId<HTMLInputElement>('file-input');
const markedToggle = byId<HTMLInputElement>('marked-toggle');
const renumberButton = byId<HTMLButtonElement>('renumber-button');
const clearButton = byId<HTMLButtonElement>('clear-button');
const keyPanel = byId('key-panel');
const keyInput = byId<HTMLInputElement>('api-key');

let info: ServerInfo | undefined;
let image: OpenedImage | undefined;

const editor = new MarkEditor(store, overlay);
const list = new MarkList(store, byId<HTMLOListElement>('mark-list'), byId('marks-empty'));
const askView = new AskView({
  connection,
  store,
  image: () => image?.blob,
  highlight(labels) {
    editor.highlight(labels);
    list.highlight(labels);
  },
  showMarkedImage,
  needsApiKey: askForKey,
});

store.subscribe(() => {
  renumberButton.disabled = store.marks.length === 0;
  clearButton.disabled = store.marks.length === 0;
});

// --- the image ---------------------------------------------------------------------------

async function useImage(blob: Blob, name: string): Promise<void> {
  imageError.hidden = true;
  try {
    const opened = await openImage(blob, name, info?.limits);
    if (image !== undefined) URL.revokeObjectURL(image.url);
    image = opened;
    photo.src = opened.url;
    photo.alt = `${name}, ${opened.width}×${opened.height} pixels`;
    photo.hidden = false;
    overlay.hidden = false;
    byId('stage-empty').hidden = true;
    stage.dataset.width = String(opened.width);
    stage.dataset.height = String(opened.height);
    showMarkedImage(undefined);
    store.reset({ width: opened.width, height: opened.height });
    stage.focus({ preventScroll: true });
  } catch (error) {
    imageError.textContent =
      error instanceof ImageRejectedError ? error.message : reportError(error).text;
    imageError.hidden = false;
  }
}

async function useExampleScene(): Promise<void> {
  const response = await fetch(exampleSceneUrl);
  await useImage(await response.blob(), 'shapes.png');
}

function showMarkedImage(marked: MarkedImage | undefined): void {
  if (markedPhoto.src !== '') URL.revokeObjectURL(markedPhoto.src);
  markedPhoto.removeAttribute('src');
  markedToggle.disabled = marked === undefined;
  if (marked !== undefined) {
    const bytes = Uint8Array.from(atob(marked.data), (c) => c.charCodeAt(0));
    markedPhoto.src = URL.createObjectURL(new Blob([bytes], { type: `image/${marked.format}` }));
  }
  setMarkedView(marked !== undefined && markedToggle.checked);
}

/** Shows the image as the model saw it (marks drawn by the server) instead of the editor. */
function setMarkedView(on: boolean): void {
  markedToggle.checked = on;
  markedPhoto.hidden = !on;
  photo.hidden = on || image === undefined;
  overlay.hidden = on || image === undefined;
  stage.classList.toggle('showing-marked', on);
}

listenForImages(fileInput, stage, (blob, name) => void useImage(blob, name));
byId('example-button').addEventListener('click', () => void useExampleScene());
markedToggle.addEventListener('change', () => setMarkedView(markedToggle.checked));
renumberButton.addEventListener('click', () => store.renumber());
clearButton.addEventListener('click', () => store.clear());

// --- the server and its API key -----------------------------------------------------------

async function connect(): Promise<void> {
  status.textContent = `Connecting to ${connection.baseUrl}…`;
  document.documentElement.dataset.state = 'connecting';
  for (;;) {
    try {
      info = await connection.client.info();
      const { model } = info;
      status.textContent = `Connected: ${model.id} ${model.revision} (${model.executionProvider}, ${model.dtype})`;
      document.documentElement.dataset.state = 'ready';
      performance.mark('playground-ready');
      return;
    } catch (error) {
      const report = reportError(error);
      if (report.needsApiKey) {
        status.textContent = 'This server needs an API key.';
        askForKey();
        return;
      }
      status.textContent = `${report.text}${report.retryable ? ' (trying again…)' : ''}`;
      if (!report.retryable) return;
      await new Promise((resolve) => setTimeout(resolve, 2_000));
    }
  }
}

function askForKey(): void {
  if (connection.hasKey) connection.forgetApiKey();
  keyPanel.hidden = false;
  document.documentElement.dataset.state = 'needs-key';
  keyInput.focus();
}

byId<HTMLFormElement>('key-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const key = keyInput.value.trim();
  if (key === '') return;
  connection.setApiKey(key, byId<HTMLInputElement>('remember-key').checked);
  keyInput.value = '';
  keyPanel.hidden = true;
  void connect();
});

// --- shortcuts ----------------------------------------------------------------------------

document.addEventListener('keydown', (event) => {
  if ((event.ctrlKey || event.metaKey) && event.key === 'Enter') {
    event.preventDefault();
    askView.ask();
    return;
  }
  if (isTyping(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
  const actions: Record<string, () => void> = {
    o: () => fileInput.click(),
    r: () => store.renumber(),
    m: () => {
      if (!markedToggle.disabled) setMarkedView(!markedToggle.checked);
    },
    '[': () => store.selectStep(-1),
    ']': () => store.selectStep(1),
  };
  const action = actions[event.key.toLowerCase()];
  if (action === undefined) return;
  event.preventDefault();
  action();
});

void connect();
