# Writes the acl-ipc-guard command's shell completion scripts, as the command itself prints
# them, under the names each shell looks for:
#   cmake -DCLI=path/to/acl-ipc-guard -DOUT=dir -P completions.cmake
foreach(pair "bash;acl-ipc-guard" "zsh;_acl-ipc-guard" "fish;acl-ipc-guard.fish")
  list(GET pair 0 shell)
  list(GET pair 1 name)
  file(MAKE_DIRECTORY ${OUT}/${shell})
  execute_process(COMMAND ${CLI} completions ${shell}
    OUTPUT_FILE ${OUT}/${shell}/${name}
    RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${CLI} completions ${shell} failed: ${rc}")
  endif()
endforeach()
