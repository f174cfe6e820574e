/**
 * Tests run Dawn on SwiftShader when the machine has no GPU driver: point the Vulkan loader at the
 * SwiftShader ICD that Debian's chromium package ships, unless the environment already chose drivers.
 */
import { existsSync } from 'node:fs';
import { SWIFTSHADER_ICD } from '../src/device/gpu.js';

if (!process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES && existsSync(SWIFTSHADER_ICD)) {
  process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
}
