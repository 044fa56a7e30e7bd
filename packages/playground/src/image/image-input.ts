/** Calls `onImage` with an image the user dropped anywhere on the page, pasted, or picked. */
export function listenForImages(
  fileInput: HTMLInputElement,
  dropZone: HTMLElement,
  onImage: (blob: Blob, name: string) => void,
): void {
  fileInput.addEventListener('change', () => {
    const file = fileInput.files?.[0];
    if (file !== undefined) onImage(file, file.name);
    // The same file picked again still fires change.
    fileInput.value = '';
  });
  document.addEventListener('dragover', (event) => {
    if (!event.dataTransfer?.types.includes('Files')) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
    dropZone.classList.add('dragging');
  });
  document.addEventListener('dragleave', (event) => {
    if (event.relatedTarget === null) dropZone.classList.remove('dragging');
  });
  document.addEventListener('drop', (event) => {
    dropZone.classList.remove('dragging');
    const file = event.dataTransfer?.files[0];
    if (file === undefined) return;
    event.preventDefault();
    onImage(file, file.name);
  });
  document.addEventListener('paste', (event) => {
    const file = [...(event.clipboardData?.files ?? [])].find((f) => f.type.startsWith('image/'));
    if (file === undefined) return;
    event.preventDefault();
    onImage(file, file.name || 'the pasted image');
  });
}
