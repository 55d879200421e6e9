//! BPF helper function numbers (`enum bpf_func_id` in `linux/bpf.h`), the
//! ones a SystemTap translation uses. Any other number works with
//! [`crate::insn::Insn::call_helper`] too.

macro_rules! helpers {
    ($($name:ident = $id:expr, $text:literal;)*) => {
        $(#[doc = concat!("`bpf_", $text, "`")] pub const $name: u32 = $id;)*
        /// The helper's name (`bpf_...`) for listings.
        pub fn name(id: u32) -> Option<&'static str> {
            match id {
                $($id => Some(concat!("bpf_", $text)),)*
                _ => None,
            }
        }
    };
}

helpers! {
    MAP_LOOKUP_ELEM = 1, "map_lookup_elem";
    MAP_UPDATE_ELEM = 2, "map_update_elem";
    MAP_DELETE_ELEM = 3, "map_delete_elem";
    PROBE_READ = 4, "probe_read";
    KTIME_GET_NS = 5, "ktime_get_ns";
    TRACE_PRINTK = 6, "trace_printk";
    GET_PRANDOM_U32 = 7, "get_prandom_u32";
    GET_SMP_PROCESSOR_ID = 8, "get_smp_processor_id";
    TAIL_CALL = 12, "tail_call";
    GET_CURRENT_PID_TGID = 14, "get_current_pid_tgid";
    GET_CURRENT_UID_GID = 15, "get_current_uid_gid";
    GET_CURRENT_COMM = 16, "get_current_comm";
    PERF_EVENT_OUTPUT = 25, "perf_event_output";
    GET_STACKID = 27, "get_stackid";
    GET_CURRENT_TASK = 35, "get_current_task";
    PROBE_READ_STR = 45, "probe_read_str";
    GET_STACK = 67, "get_stack";
    SEND_SIGNAL = 109, "send_signal";
    PROBE_READ_USER = 112, "probe_read_user";
    PROBE_READ_KERNEL = 113, "probe_read_kernel";
    PROBE_READ_USER_STR = 114, "probe_read_user_str";
    PROBE_READ_KERNEL_STR = 115, "probe_read_kernel_str";
    JIFFIES64 = 118, "jiffies64";
    GET_NS_CURRENT_PID_TGID = 120, "get_ns_current_pid_tgid";
    KTIME_GET_BOOT_NS = 125, "ktime_get_boot_ns";
    RINGBUF_OUTPUT = 130, "ringbuf_output";
    RINGBUF_RESERVE = 131, "ringbuf_reserve";
    RINGBUF_SUBMIT = 132, "ringbuf_submit";
    RINGBUF_DISCARD = 133, "ringbuf_discard";
    COPY_FROM_USER = 148, "copy_from_user";
    GET_CURRENT_TASK_BTF = 158, "get_current_task_btf";
    FOR_EACH_MAP_ELEM = 164, "for_each_map_elem";
    SNPRINTF = 165, "snprintf";
    GET_FUNC_IP = 173, "get_func_ip";
    TASK_PT_REGS = 175, "task_pt_regs";
    LOOP = 181, "loop";
    STRNCMP = 182, "strncmp";
    MAP_LOOKUP_PERCPU_ELEM = 195, "map_lookup_percpu_elem";
}
