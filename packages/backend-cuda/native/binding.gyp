# node-gyp build of the CUDA addon. Run through `node scripts/build-native.mjs` (it finds nvcc, the Node
# headers and node-gyp, and copies the result to prebuilds/), not directly.
#   .cu files: nvcc, one object per file (make -j compiles them in parallel); -gencode for sm_80, sm_86,
#              sm_89 and sm_90a plus compute_80 PTX that newer drivers compile for newer chips.
#   addon.cc:  the host compiler with node-addon-api.
#   link:      the CUDA runtime statically (libcudart_static.a): users need only the NVIDIA driver.
{
  'variables': {
    'variables': {'cuda_home%': '/usr/local/cuda'},
    'cuda_home%': '<(cuda_home)',
    'nvcc%': '<(cuda_home)/bin/nvcc',
    'cuda_gencode%': '-gencode=arch=compute_80,code=sm_80 -gencode=arch=compute_86,code=sm_86 -gencode=arch=compute_89,code=sm_89 -gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_80,code=compute_80',
  },
  'targets': [
    {
      'target_name': 'diff_transformer_cuda',
      'sources': [
        'addon.cc',
        'elementwise.cu',
        'rows.cu',
        'matmul.cu',
        'attention.cu',
        'flash_f16.cu',
        'flash_bf16.cu',
        'flash_f32.cu',
        'elementwise_training.cu',
        'rows_training.cu',
        'attention_backward.cu',
      ],
      'include_dirs': [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        '<(cuda_home)/include',
      ],
      'defines': ['NAPI_VERSION=8', 'NAPI_CPP_EXCEPTIONS', 'NODE_ADDON_API_DISABLE_DEPRECATED'],
      'cflags!': ['-fno-exceptions'],
      'cflags_cc!': ['-fno-exceptions', '-fno-rtti'],
      'cflags_cc': ['-std=c++17', '-fexceptions', '-O2'],
      'rules': [
        {
          'rule_name': 'nvcc',
          'extension': 'cu',
          'inputs': [
            '<(RULE_INPUT_PATH)', 'kernels.h', 'training.h', 'common.cuh', 'reduce.cuh', 'mma.cuh', 'attention.cuh',
            'flash.cuh',
          ],
          'outputs': ['<(INTERMEDIATE_DIR)/<(RULE_INPUT_ROOT).o'],
          'action': [
            '<(nvcc)', '-std=c++17', '-O3', '--threads', '0', '<@(cuda_gencode)',
            '-Xcompiler', '-fPIC', '-c', '<(RULE_INPUT_PATH)', '-o', '<@(_outputs)',
          ],
          'message': 'nvcc <(RULE_INPUT_PATH)',
          'process_outputs_as_sources': 1,
        },
      ],
      'libraries': [
        '<(cuda_home)/lib64/libcudart_static.a',
        '-ldl',
        '-lrt',
        '-lpthread',
      ],
    },
  ],
}
