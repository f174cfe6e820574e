/**
 * Chat templates: the Jinja template a tokenizer_config.json carries (`chat_template`: one string, or
 * a list of named ones of which "default" is used, as transformers does), or a separate
 * chat_template.jinja (what transformers ≥ 4.50 writes), rendered with @huggingface/jinja, the Jinja
 * implementation transformers.js uses, so templates behave as they do there. Browser-safe.
 */
import { Template } from '@huggingface/jinja';
import type { FolderSource } from './byte-source.js';
import { CheckpointConfigError } from './errors.js';
import { readJsonObject } from './generation-config.js';

export const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';
export const CHAT_TEMPLATE_FILE = 'chat_template.jinja';

export interface ChatMessage {
  readonly role: string;
  readonly content: string;
}

/** A folder's chat template and the special tokens it is rendered with. */
export interface ChatTemplate {
  readonly template: string;
  /** The tokenizer config's special tokens by their template names (bos_token, eos_token, …). */
  readonly specialTokens: Readonly<Record<string, string>>;
  /** The file the template came from, for messages. */
  readonly source: string;
}

const SPECIAL_TOKENS = ['bos_token', 'eos_token', 'unk_token', 'pad_token', 'sep_token', 'cls_token', 'mask_token'];

/** The folder's chat template, or null when it has none. */
export async function readChatTemplate(folder: FolderSource): Promise<ChatTemplate | null> {
  const config = (await readJsonObject(folder, TOKENIZER_CONFIG_FILE)) ?? {};
  const configFile = `${folder.name}/${TOKENIZER_CONFIG_FILE}`;
  const specialTokens: Record<string, string> = {};
  for (const name of SPECIAL_TOKENS) {
    const token = config[name];
    // A token is its text, or an AddedToken object {content, …}.
    const text =
      typeof token === 'string'
        ? token
        : typeof token === 'object' && token !== null && typeof (token as { content?: unknown }).content === 'string'
          ? (token as { content: string }).content
          : undefined;
    if (text !== undefined) specialTokens[name] = text;
  }
  const declared = config.chat_template;
  let template: string | null = null;
  let source = configFile;
  if (typeof declared === 'string') template = declared;
  else if (Array.isArray(declared)) {
    const named = declared.find(
      (t) => typeof t === 'object' && t !== null && (t as { name?: unknown }).name === 'default',
    );
    if (!named || typeof (named as { template?: unknown }).template !== 'string')
      throw new CheckpointConfigError(
        configFile,
        'chat_template',
        `a list of templates needs one named "default" (the one used without a choice), got names ${JSON.stringify(
          declared.map((t) => (t as { name?: unknown })?.name),
        )}`,
      );
    template = (named as { template: string }).template;
  } else if (declared !== undefined && declared !== null) {
    throw new CheckpointConfigError(
      configFile,
      'chat_template',
      `expected a template string or a list of {name, template}, got ${JSON.stringify(declared)}`,
    );
  } else if (await folder.exists(CHAT_TEMPLATE_FILE)) {
    template = await folder.readText(CHAT_TEMPLATE_FILE);
    source = `${folder.name}/${CHAT_TEMPLATE_FILE}`;
  }
  if (template === null) return null;
  // Parse now, so a broken template is reported as the folder's, before any model is loaded.
  parse(template, source);
  return { template, specialTokens, source };
}

/**
 * The prompt text a chat template makes of the messages; with addGenerationPrompt (default true) it
 * ends where the assistant's reply begins. Encode it without adding special tokens: the template
 * writes them (bos_token …) itself.
 */
export function applyChatTemplate(
  chat: ChatTemplate,
  messages: readonly ChatMessage[],
  options: { addGenerationPrompt?: boolean } = {},
): string {
  try {
    return parse(chat.template, chat.source).render({
      ...chat.specialTokens,
      messages: messages.map((m) => ({ role: m.role, content: m.content })),
      add_generation_prompt: options.addGenerationPrompt ?? true,
    });
  } catch (error) {
    throw new CheckpointConfigError(
      chat.source,
      'chat_template',
      `the template failed on these messages: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
}

function parse(template: string, source: string): Template {
  try {
    return new Template(template);
  } catch (error) {
    throw new CheckpointConfigError(
      source,
      'chat_template',
      `not a template @huggingface/jinja can parse: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
}
