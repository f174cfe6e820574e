/**
 * One file of a folder to write (a checkpoint, an export): its name and its bytes in pieces, a piece
 * either made already or made when the writer reaches it (a large tensor's bytes). Browser-safe: the
 * Node writer (writeFolderAtomic in '@diff-transformer/core/node') and a browser download both take it.
 */
export interface FolderFile {
  readonly name: string;
  readonly chunks: ReadonlyArray<Uint8Array | (() => Uint8Array)>;
}
