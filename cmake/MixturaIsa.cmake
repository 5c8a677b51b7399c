# The instruction-set levels mixtura compiles its dispatched copies for, and the flags of each.
# x86-64 with GCC or Clang: baseline = x86-64-v2, avx2 = x86-64-v3, avx512 = x86-64-v4 (the psABI
# levels, spelled as feature flags so that compilers older than -march=x86-64-vN take them too).
# Elsewhere (aarch64, MSVC): baseline only, with the compiler's default flags.
set(MIXTURA_X86_64_LEVELS OFF)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64|x64)$" AND CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang"
   AND NOT CMAKE_OSX_ARCHITECTURES MATCHES "arm64")
  set(MIXTURA_X86_64_LEVELS ON)
endif()
if(MIXTURA_X86_64_LEVELS)
  set(MIXTURA_ISA_LEVELS baseline avx2 avx512)
else()
  set(MIXTURA_ISA_LEVELS baseline)
endif()

# mixtura_isa_flags(<level> <out-var>): the compile options of one level ("" where there are none).
function(mixtura_isa_flags level out)
  if(NOT level IN_LIST MIXTURA_ISA_LEVELS)
    message(FATAL_ERROR "mixtura: ISA level '${level}' is not one of this target's levels (${MIXTURA_ISA_LEVELS})")
  endif()
  set(flags "")
  if(MIXTURA_X86_64_LEVELS)
    set(v2 -msse3 -mssse3 -msse4.1 -msse4.2 -mpopcnt -mcx16 -msahf)
    set(v3 ${v2} -mavx -mavx2 -mbmi -mbmi2 -mf16c -mfma -mlzcnt -mmovbe -mxsave)
    set(v4 ${v3} -mavx512f -mavx512bw -mavx512cd -mavx512dq -mavx512vl)
    if(level STREQUAL "baseline")
      set(flags ${v2})
    elseif(level STREQUAL "avx2")
      set(flags ${v3})
    else()
      set(flags ${v4})
    endif()
  endif()
  set(${out} ${flags} PARENT_SCOPE)
endfunction()
