//! English and Simplified Chinese.
//!
//! The language comes from the `berth-lang` cookie (set by `GET /language?lang=…&redirect=…`,
//! which the switch in the top bar and on the sign-in page links to). On the server `shell`
//! reads the cookie, provides the [`Lang`] as context and writes it into `<html lang>`; the
//! hydrating client reads it back from `<html lang>`, so both render the same text.
//!
//! Texts are keyed by their English wording: `t("Projects")`. Every key used in the crate must
//! have a Chinese entry in [`ZH_CN`] (or `identity::ZH_CN`, `policy::ZH_CN`, `ops::ZH_CN`) — a unit test
//! reads the sources and fails on any missing one, so a page is never half translated. `{}`
//! in a text is filled by [`fill`].

use leptos::prelude::*;

mod identity;
mod ops;
mod policy;

/// The cookie that keeps the chosen language.
pub const COOKIE: &str = "berth-lang";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lang {
    #[default]
    En,
    ZhCn,
}

impl Lang {
    /// Accepts Harbor's and BCP 47 spellings (`en-us`, `en-US`, `en`, `zh-cn`, `zh-CN`, `zh`).
    pub fn from_tag(tag: &str) -> Option<Lang> {
        match tag.trim().to_ascii_lowercase().as_str() {
            "en" | "en-us" => Some(Lang::En),
            "zh" | "zh-cn" | "zh-hans" | "zh-hans-cn" => Some(Lang::ZhCn),
            _ => None,
        }
    }

    /// The BCP 47 tag, as written in `<html lang>` and in the cookie.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en-US",
            Lang::ZhCn => "zh-CN",
        }
    }

    /// The language's own name, as the switch shows it.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::ZhCn => "简体中文",
        }
    }

    pub const ALL: [Lang; 2] = [Lang::En, Lang::ZhCn];

    /// The language a `Cookie` header asks for (English when none or unknown).
    pub fn from_cookie_header(header: &str) -> Lang {
        header
            .split(';')
            .filter_map(|c| c.trim().split_once('='))
            .find(|(k, _)| *k == COOKIE)
            .and_then(|(_, v)| Lang::from_tag(v))
            .unwrap_or_default()
    }
}

/// The language of the page being rendered.
pub fn lang() -> Lang {
    use_context::<Lang>().unwrap_or_default()
}

/// `key` in the page's language.
pub fn t(key: &'static str) -> &'static str {
    translate(lang(), key)
}

/// A value computed at run time (a status, a trigger) in the page's language; unknown values
/// are shown as they are.
pub fn tv(value: &str) -> String {
    match lang() {
        Lang::En => value,
        Lang::ZhCn => zh_cn(value).unwrap_or(value),
    }
    .to_string()
}

pub fn translate(lang: Lang, key: &'static str) -> &'static str {
    match lang {
        Lang::En => key,
        Lang::ZhCn => zh_cn(key).unwrap_or(key),
    }
}

fn zh_cn(en: &str) -> Option<&'static str> {
    ZH_CN
        .iter()
        .chain(identity::ZH_CN)
        .chain(policy::ZH_CN)
        .chain(ops::ZH_CN)
        .find(|(k, _)| *k == en)
        .map(|(_, zh)| *zh)
}

/// Replaces each `{}` in `text`, in order, with the next argument.
pub fn fill(text: &str, args: &[&dyn std::fmt::Display]) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    for a in args {
        match rest.split_once("{}") {
            Some((before, after)) => {
                out.push_str(before);
                out.push_str(&a.to_string());
                rest = after;
            }
            None => break,
        }
    }
    out.push_str(rest);
    out
}

/// `GET /language?lang=<tag>&redirect=<path>`: the link that switches to `lang` and comes back
/// to `here` (path and query of the current page).
pub fn switch_href(lang: Lang, here: &str) -> String {
    format!("/language?lang={}&redirect={}", lang.tag(), crate::server_fns::auth::encode_component(here))
}

/// (English, 简体中文).
pub const ZH_CN: &[(&str, &str)] = &[
    // frame
    ("Skip to content", "跳到正文"),
    ("Berth home", "Berth 首页"),
    ("Admin", "管理员"),
    ("Log out", "注销"),
    ("Main", "主导航"),
    ("Projects", "项目"),
    ("Administration", "系统管理"),
    ("Garbage Collection", "垃圾清理"),
    ("Language", "语言"),
    ("Loading…", "加载中…"),
    // sign in
    ("Sign in · Berth", "登录 · Berth"),
    ("Enterprise container registry", "企业级容器镜像仓库"),
    ("Username", "用户名"),
    ("Password", "密码"),
    ("Log in", "登录"),
    ("Signing in…", "正在登录…"),
    ("Your session has expired. Please sign in again.", "会话已过期，请重新登录。"),
    ("Sign-in failed.", "登录失败。"),
    ("please sign in", "请先登录"),
    ("invalid username or password", "用户名或密码错误"),
    ("too many failed logins; try again in {} seconds", "登录失败次数过多，请在 {} 秒后重试"),
    ("too many sign-ins at once; try again in {} seconds", "同时登录的请求过多，请在 {} 秒后重试"),
    ("permission denied", "权限不足"),
    // not found
    ("Page not found", "页面不存在"),
    ("The page you asked for does not exist.", "您访问的页面不存在。"),
    ("Go to projects", "前往项目"),
    // projects
    ("Projects · Berth", "项目 · Berth"),
    ("Filter projects by name", "按名称过滤项目"),
    ("Filter by name", "按名称过滤"),
    ("Search", "搜索"),
    ("No projects match.", "没有匹配的项目。"),
    ("Project name", "项目名称"),
    ("Access level", "访问级别"),
    ("Owner", "所有者"),
    ("Repositories", "镜像仓库"),
    ("Storage", "存储"),
    ("Creation time", "创建时间"),
    ("Public", "公开"),
    ("Private", "私有"),
    ("{} project(s)", "共 {} 个项目"),
    ("Page {} of {}", "第 {} 页，共 {} 页"),
    ("‹ Previous", "‹ 上一页"),
    ("Next ›", "下一页 ›"),
    ("Pagination", "分页"),
    // repositories and artifacts
    ("Repositories · Berth", "镜像仓库 · Berth"),
    ("Artifacts · Berth", "制品 · Berth"),
    ("Breadcrumb", "导航路径"),
    ("Filter repositories by name", "按名称过滤镜像仓库"),
    ("{} item(s)", "共 {} 项"),
    ("No repositories yet. Push an image to create one.", "还没有镜像仓库。推送一个镜像即可创建。"),
    ("Name", "名称"),
    ("Artifacts", "制品数"),
    ("Pulls", "下载数"),
    ("Last modified", "最后修改时间"),
    ("No artifacts in this repository.", "该镜像仓库中没有制品。"),
    ("Digest", "摘要"),
    ("Tags", "标签"),
    ("Type", "类型"),
    ("Size", "大小"),
    ("Push time", "推送时间"),
    ("Pull time", "拉取时间"),
    ("Pull command", "拉取命令"),
    ("Copy", "复制"),
    ("Copied", "已复制"),
    ("IMAGE", "镜像"),
    ("INDEX", "镜像索引"),
    ("CHART", "Chart"),
    ("CNAB", "CNAB"),
    ("UNKNOWN", "其他"),
    // garbage collection
    ("Garbage Collection · Berth", "垃圾清理 · Berth"),
    (
        "Deleting tags, artifacts and repositories is immediate but logical: the bytes stay until garbage collection. ",
        "删除标签、制品和镜像仓库会立即生效，但只是逻辑删除：数据在垃圾清理之前仍占用存储。",
    ),
    (
        "GC runs online — pushes and pulls continue — and never deletes what was used within its protection window.",
        "垃圾清理在线运行（推送和拉取不受影响），并且不会删除保护窗口内用到的任何数据。",
    ),
    ("Only system administrators may manage garbage collection.", "只有系统管理员可以管理垃圾清理。"),
    ("Run now", "立即运行"),
    (" Delete untagged artifacts", " 删除未打标签的制品"),
    (" Dry run (report what would be deleted, delete nothing)", " 模拟运行（只报告将被删除的内容，不删除）"),
    ("A run is in progress…", "正在运行…"),
    ("Run garbage collection", "运行垃圾清理"),
    ("Schedule", "定时任务"),
    ("{} ({}); next run {}", "{}（{}）；下次运行 {}"),
    ("Not scheduled.", "未设置定时任务。"),
    ("Repeat", "周期"),
    ("None", "无"),
    ("Hourly", "每小时"),
    ("Daily", "每天"),
    ("Weekly", "每周"),
    ("Custom", "自定义"),
    ("Cron (Custom; seconds first, e.g. 0 30 2 * * *)", "Cron 表达式（自定义；第一位是秒，例如 0 30 2 * * *）"),
    ("Save schedule", "保存定时任务"),
    ("History", "历史记录"),
    (
        " stored in total (blobs and manifests, including garbage not yet collected)",
        " 总存储（数据块和清单，含尚未清理的垃圾）",
    ),
    ("No project stores anything yet.", "还没有项目存储任何数据。"),
    ("Storage used per project", "各项目使用的存储"),
    ("No garbage collection has run yet.", "还没有运行过垃圾清理。"),
    ("ID", "ID"),
    ("Trigger", "触发方式"),
    ("Mode", "模式"),
    ("Status", "状态"),
    ("Progress", "进度"),
    ("Freed", "释放"),
    ("Started", "开始时间"),
    ("Duration", "耗时"),
    ("Actions", "操作"),
    ("Dry run, untagged too", "模拟运行，含未打标签的制品"),
    ("Dry run", "模拟运行"),
    ("Delete, untagged too", "删除，含未打标签的制品"),
    ("Delete", "删除"),
    ("would free {} · {} blobs, {} manifests, {} artifacts", "将释放 {} · {} 个数据块、{} 个清单、{} 个制品"),
    ("{} · {} blobs, {} manifests, {} artifacts", "{} · {} 个数据块、{} 个清单、{} 个制品"),
    ("Log", "日志"),
    ("Stop", "停止"),
    ("Manual", "手动"),
    ("Pending", "等待中"),
    ("Running", "运行中"),
    ("Success", "成功"),
    ("Error", "失败"),
    ("Stopped", "已停止"),
    // job triggers (`jobs.job_kind`) and GC phases, shown as they come from the server
    ("MANUAL", "手动"),
    ("SCHEDULE", "定时"),
    ("CLI", "命令行"),
    ("uploads", "清理上传"),
    ("mark", "标记"),
    ("artifacts", "删除制品"),
    ("sweep", "清除"),
    ("done", "完成"),
    ("stopped", "已停止"),
    // shared
    ("Confirm", "确认"),
    ("Cancel", "取消"),
    ("Create", "创建"),
    ("Save", "保存"),
    ("Saved.", "已保存。"),
    ("Add", "添加"),
    ("Remove", "移除"),
    ("Done", "完成"),
    ("Yes", "是"),
    ("No", "否"),
    ("All", "全部"),
    ("Deleted {}.", "已删除 {}。"),
    ("Description", "描述"),
    ("Permissions", "权限"),
    ("Email", "邮箱"),
    ("Full name", "全名"),
    ("Comment", "注释"),
    ("Users", "用户管理"),
    ("Audit log", "审计日志"),
    ("Configuration", "配置管理"),
    ("Account", "账户"),
    (
        "8–128 characters with at least one upper-case letter, one lower-case letter and one digit.",
        "8–128 个字符，至少包含一个大写字母、一个小写字母和一个数字。",
    ),
    // sign up
    ("Your account was created. Sign in with it.", "账户已创建，请登录。"),
    ("No account yet?", "还没有账户？"),
    ("Sign up", "注册"),
    ("Sign up · Berth", "注册 · Berth"),
    ("Confirm password", "确认密码"),
    ("Self-registration is disabled. Ask an administrator for an account.", "未开放自助注册，请联系管理员创建账户。"),
    ("Back to sign in", "返回登录"),
    // projects: create, delete
    ("New project", "新建项目"),
    (
        "Lower-case letters, digits and . _ -, starting and ending with a letter or digit.",
        "小写字母、数字和 . _ -，以字母或数字开头和结尾。",
    ),
    (" Public: anyone may pull images from this project, without logging in", " 公开：任何人无需登录即可从该项目拉取镜像"),
    ("Deleted project {}.", "已删除项目 {}。"),
    ("Delete project {}?", "删除项目 {}？"),
    ("Delete project", "删除项目"),
    ("The project still has {} repositories; delete them first.", "项目中还有 {} 个镜像仓库，请先删除它们。"),
    ("The project is empty and can be deleted.", "项目为空，可以删除。"),
    ("Project registry", "项目仓库"),
    // project tabs
    ("Project", "项目"),
    ("Project · Berth", "项目 · Berth"),
    ("Summary", "概要"),
    ("Members", "成员"),
    ("Robot Accounts", "机器人账户"),
    ("Logs", "日志"),
    ("Members · Berth", "成员 · Berth"),
    ("Robot Accounts · Berth", "机器人账户 · Berth"),
    ("Logs · Berth", "日志 · Berth"),
    ("Configuration · Berth", "配置管理 · Berth"),
    ("Project Admin", "项目管理员"),
    ("Maintainer", "维护人员"),
    ("Developer", "开发者"),
    ("Guest", "访客"),
    ("Limited Guest", "受限访客"),
    ("No role", "无角色"),
    ("Role", "角色"),
    ("Role of {}", "{} 的角色"),
    ("Add member", "添加成员"),
    ("Added {} as {}.", "已添加 {}，角色为{}。"),
    ("{} is now {}.", "{} 的角色已改为{}。"),
    ("Removed {}.", "已移除 {}。"),
    ("Remove {} from the project?", "从项目中移除 {}？"),
    ("User", "用户"),
    ("No members.", "没有成员。"),
    // robot accounts
    ("New robot account", "新建机器人账户"),
    ("Created robot account {}.", "已创建机器人账户 {}。"),
    ("Expires after (days; -1 never)", "有效期（天；-1 表示永不过期）"),
    ("Secret of {}", "{} 的令牌"),
    (
        "Copy it now: it is shown only once. Log in with the robot's name and this secret.",
        "请立即复制：令牌只显示这一次。用机器人账户名和此令牌登录。",
    ),
    ("Secret", "令牌"),
    ("Expires", "过期时间"),
    ("New secret for {}.", "已为 {} 生成新令牌。"),
    ("Enabled {}.", "已启用 {}。"),
    ("Disabled {}.", "已禁用 {}。"),
    ("Never", "永不过期"),
    ("Disabled", "已禁用"),
    ("Enabled", "已启用"),
    ("Refresh secret", "刷新令牌"),
    ("Enable", "启用"),
    ("Disable", "禁用"),
    ("Delete robot account {}?", "删除机器人账户 {}？"),
    ("No robot accounts.", "没有机器人账户。"),
    ("Pull artifacts", "拉取制品"),
    ("Push artifacts", "推送制品"),
    ("Delete artifacts", "删除制品"),
    ("Create tags", "创建标签"),
    ("Delete tags", "删除标签"),
    ("List repositories", "列出镜像仓库"),
    ("List artifacts", "列出制品"),
    ("Read artifacts", "读取制品"),
    // audit log
    ("Operation", "操作"),
    ("Resource type", "资源类型"),
    ("Resource", "资源"),
    ("From (UTC)", "开始（UTC）"),
    ("To (UTC)", "结束（UTC）"),
    ("Result", "结果"),
    ("Time", "时间"),
    ("Client address", "客户端地址"),
    ("Succeeded", "成功"),
    ("Failed", "失败"),
    ("No log entries match.", "没有匹配的日志。"),
    ("create", "创建"),
    ("update", "更新"),
    ("delete", "删除"),
    ("push", "推送"),
    ("pull", "拉取"),
    ("login", "登录"),
    ("stop", "停止"),
    ("project", "项目"),
    ("repository", "镜像仓库"),
    ("artifact", "制品"),
    ("tag", "标签"),
    ("member", "成员"),
    ("robot", "机器人账户"),
    ("user", "用户"),
    ("configuration", "配置"),
    ("gc", "垃圾清理"),
    ("gc_schedule", "垃圾清理定时任务"),
    // repositories, artifacts
    ("Delete repository {} and all its artifacts?", "删除镜像仓库 {} 及其全部制品？"),
    ("Artifact · Berth", "制品 · Berth"),
    ("Repository", "镜像仓库"),
    ("Removed tag {}.", "已移除标签 {}。"),
    ("Remove tag {}?", "移除标签 {}？"),
    ("Remove tag {}", "移除标签 {}"),
    ("Added tag {}.", "已添加标签 {}。"),
    ("Add tag", "添加标签"),
    ("New tag", "新标签"),
    ("Delete artifact {}? Its tags, signatures and SBOMs go with it.", "删除制品 {}？其标签、签名和 SBOM 也会一并删除。"),
    ("Overview", "概览"),
    ("Media type", "媒体类型"),
    ("Artifact type", "制品类型"),
    ("Config", "配置"),
    ("OS/Arch", "操作系统/架构"),
    ("Created", "创建时间"),
    ("Environment", "环境变量"),
    ("Layers", "镜像层"),
    ("Platforms", "平台"),
    ("Referrers (signatures, SBOMs)", "引用者（签名、SBOM）"),
    ("Nothing refers to this artifact.", "没有制品引用此制品。"),
    ("Build history", "构建历史"),
    ("Command", "命令"),
    ("Manifest (raw)", "清单（原文）"),
    // administration
    ("Only system administrators may open this page.", "只有系统管理员可以打开此页面。"),
    ("Users · Berth", "用户管理 · Berth"),
    ("Created user {}.", "已创建用户 {}。"),
    ("New user", "新建用户"),
    (" System administrator", " 系统管理员"),
    ("Filter users by name", "按名称过滤用户"),
    ("Administrator", "管理员"),
    ("{} is no longer an administrator.", "{} 已不再是管理员。"),
    ("{} is now an administrator.", "{} 已成为管理员。"),
    ("Deleted user {}.", "已删除用户 {}。"),
    ("Revoke administrator", "取消管理员"),
    ("Make administrator", "设为管理员"),
    ("Delete user {}?", "删除用户 {}？"),
    ("No users match.", "没有匹配的用户。"),
    ("Authentication", "认证"),
    ("Authentication mode", "认证模式"),
    ("Database", "数据库"),
    (" Allow self-registration", " 允许自助注册"),
    ("System settings", "系统设置"),
    ("Project creation", "项目创建"),
    ("Everyone", "所有人"),
    ("Administrators only", "仅管理员"),
    ("Token expiration (minutes)", "令牌过期时间（分钟）"),
    ("Robot account expiration (days; -1 never)", "机器人账户有效期（天；-1 表示永不过期）"),
    ("System info", "系统信息"),
    ("Version", "版本"),
    ("External URL", "外部地址"),
    ("Registry", "镜像仓库地址"),
    ("Session store", "会话存储"),
    // account
    ("Account · Berth", "账户 · Berth"),
    ("The new passwords do not match.", "两次输入的新密码不一致。"),
    ("Password changed. Other sessions of this account have ended.", "密码已修改，该账户的其他会话已失效。"),
    ("Change password", "修改密码"),
    ("Current password", "当前密码"),
    ("New password", "新密码"),
    ("Confirm new password", "确认新密码"),
    ("Profile", "个人资料"),
    // registries, replications, proxy cache
    ("Registries", "仓库管理"),
    ("Replications", "复制管理"),
    ("Proxy Cache", "镜像代理"),
    ("of registry endpoint #{}", "目标仓库 #{}"),
    ("Choose the registry endpoint to proxy.", "请选择要代理的目标仓库。"),
    (" Proxy Cache: pull through from a registry endpoint and keep what was pulled", " 镜像代理：从目标仓库拉取并缓存拉取过的内容"),
    ("Registry endpoint", "目标仓库"),
    ("No registry endpoint of type docker-registry or harbor: create one under Administration → Registries.", "没有 docker-registry 或 harbor 类型的目标仓库：请先在 系统管理 → 仓库管理 中创建。"),
    ("Registries · Berth", "仓库管理 · Berth"),
    ("New endpoint", "新建目标"),
    ("Registry endpoints are the other registries replication rules and proxy-cache projects talk to.", "目标仓库是复制规则和镜像代理项目所连接的其他镜像仓库。"),
    ("No registry endpoints yet.", "还没有目标仓库。"),
    ("Endpoint URL", "目标URL"),
    ("Provider", "提供者"),
    ("Verify remote certificate", "验证远程证书"),
    (" Verify remote certificate", " 验证远程证书"),
    ("Deleted endpoint {}.", "已删除目标 {}。"),
    ("Connection tested successfully.", "测试连接成功。"),
    ("Connection failed: {}", "连接失败：{}"),
    ("Test connection", "测试连接"),
    ("Testing…", "正在测试…"),
    ("Edit", "编辑"),
    ("Delete endpoint {}?", "删除目标 {}？"),
    ("Saved endpoint {}.", "已保存目标 {}。"),
    ("Created endpoint {}.", "已创建目标 {}。"),
    ("Edit endpoint", "编辑目标"),
    ("Access ID", "访问ID"),
    ("Access secret", "访问密码"),
    ("Unchanged", "不变"),
    ("The stored secret is never shown; leave the field empty to keep it.", "已保存的密码从不显示；留空则保持不变。"),
    ("healthy", "健康"),
    ("unhealthy", "不健康"),
    ("unknown", "未知"),
    ("Saved rule {}.", "已保存规则 {}。"),
    ("Created rule {}.", "已创建规则 {}。"),
    ("matching", "匹配"),
    ("excluding", "排除"),
    ("image", "镜像"),
    ("Edit replication rule", "编辑复制规则"),
    ("New replication rule", "新建规则"),
    ("Replication mode", "复制模式"),
    ("Push-based", "推送模式"),
    ("Pull-based", "拉取模式"),
    ("Destination registry", "目标仓库"),
    ("Source registry", "源仓库"),
    ("Source resource filter", "源资源过滤器"),
    ("Tag", "Tag"),
    ("Tag filter mode", "Tag 过滤方式"),
    ("Label", "标签"),
    ("Label filter mode", "标签过滤方式"),
    ("label names, comma-separated", "标签名，用逗号分隔"),
    ("Destination namespace", "目标名称空间"),
    ("empty: the source's namespace", "留空：与源相同的名称空间"),
    ("Flattening", "仓库扁平化"),
    ("Flatten All Levels", "替换所有级"),
    ("No Flattening", "无替换"),
    ("Flatten 1 Level", "替换1级"),
    ("Flatten 2 Levels", "替换2级"),
    ("Flatten 3 Levels", "替换3级"),
    ("Trigger mode", "触发模式"),
    ("Scheduled", "定时"),
    ("Event Based", "事件驱动"),
    ("Cron (seconds first and 0, e.g. 0 0 2 * * *)", "Cron（秒在最前且为 0，例如 0 0 2 * * *）"),
    ("Bandwidth (KiB/s; -1 unlimited)", "带宽（KiB/s；-1 表示不限）"),
    (" Override: replace a destination tag that points elsewhere", " 覆盖：替换目标上指向其他内容的 Tag"),
    (" Delete remote resources when locally deleted", " 删除本地资源时同时也删除远程的资源"),
    (" Enable rule", " 启用规则"),
    ("Replications · Berth", "复制管理 · Berth"),
    ("Create a registry endpoint first (Administration → Registries).", "请先创建目标仓库（系统管理 → 仓库管理）。"),
    ("No replication rules yet.", "还没有复制规则。"),
    ("Select a rule to see its executions.", "选择一条规则以查看其执行记录。"),
    ("Local", "本地"),
    ("Destination", "目标"),
    ("Override", "覆盖"),
    ("(source namespace)", "（源名称空间）"),
    ("Deleted rule {}.", "已删除规则 {}。"),
    ("Started replication of {}.", "已开始复制 {}。"),
    ("Replicate", "复制"),
    ("Delete rule {}?", "删除规则 {}？"),
    ("Executions", "执行记录"),
    ("This rule has not run yet.", "该规则还没有执行过。"),
    ("Success rate", "成功率"),
    ("Stopping execution {}.", "正在停止执行 {}。"),
    ("{} of {} done, {} failed", "已完成 {} / {}，失败 {}"),
    ("Tasks of execution {}", "执行 {} 的任务"),
    ("Tasks", "任务"),
    ("No tasks: nothing matched the rule's filters, or the execution has not started them yet.", "没有任务：没有内容匹配规则的过滤器，或执行尚未创建任务。"),
    ("Source", "源"),
    ("Ended", "结束时间"),
    ("InProgress", "进行中"),
    ("Succeed", "成功"),
    ("copy", "复制"),
    ("deletion", "删除"),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every source file of the crate (found by walking `src/`, so a new page or component
    /// cannot escape the check), except this one.
    fn sources() -> Vec<(std::path::PathBuf, String)> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let (mut out, mut dirs) = (vec![], vec![root.clone()]);
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs")
                    && path != root.join("i18n.rs")
                    && !path.starts_with(root.join("i18n"))
                {
                    let text = std::fs::read_to_string(&path).unwrap();
                    out.push((path, text));
                }
            }
        }
        out.sort();
        out
    }

    /// The walk finds every page and component (the directories the old fixed list named).
    #[test]
    fn the_scan_reads_every_page_and_component() {
        let found = sources();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        for dir in ["pages", "components"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let p = entry.unwrap().path();
                assert!(found.iter().any(|(f, _)| *f == p), "{} is not scanned", p.display());
            }
        }
        assert!(found.iter().any(|(f, _)| f.ends_with("pages/projects.rs")));
        assert!(found.iter().any(|(f, _)| f.ends_with("lib.rs")));
    }

    /// Every `t("…")` in the crate's sources has a Chinese text, and no key is listed twice.
    #[test]
    fn every_text_is_translated() {
        let mut missing = vec![];
        let mut used = 0;
        for (path, src) in sources() {
            let mut rest = src.as_str();
            while let Some(i) = rest.find("t(\"") {
                // `t(` preceded by an identifier character is another function (`fmt(`…).
                let before = rest[..i].chars().last();
                rest = &rest[i + 3..];
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let end = rest.find("\")").expect("t(\"… without a closing quote");
                let key = &rest[..end];
                used += 1;
                if zh_cn(key).is_none() {
                    missing.push(format!("{key} ({})", path.display()));
                }
            }
        }
        // Texts kept in tables and passed to `t`/`tv` as values.
        use crate::pages::project::{OPERATIONS, RESOURCE_TYPES, TABS};
        use crate::pages::replication_rule::{FLATTENING, TRIGGERS};
        use crate::pages::robots::ROBOT_RIGHTS;
        use crate::pages::{auth_config, groups};
        let tables = TABS
            .iter()
            .map(|(_, l)| *l)
            .chain(ROBOT_RIGHTS.iter().map(|(_, _, l)| *l))
            .chain(crate::rest::ROLES.iter().map(|(_, l)| *l))
            .chain([crate::rest::role_name(0), crate::pages::account::PASSWORD_RULE])
            .chain(OPERATIONS)
            .chain(RESOURCE_TYPES)
            .chain(FLATTENING.iter().map(|(_, l)| *l))
            .chain(TRIGGERS.iter().map(|(_, l)| *l))
            .chain(auth_config::AUTH_MODES.iter().map(|(_, l)| *l))
            .chain(auth_config::SCOPES.iter().map(|(_, l)| *l))
            .chain(groups::GROUP_TYPES.iter().map(|(_, l)| *l))
            .chain([groups::group_type_name(0)])
            .chain(crate::pages::retention::TEMPLATES.iter().map(|(_, l, _)| *l))
            .chain(crate::pages::retention::SCHEDULES.iter().map(|(k, _)| *k))
            .chain(["matching", "excluding", "Pending", "Running", "Error", "MANUAL", "SCHEDULE"])
            .chain(crate::server_fns::purge::PURGE_OPERATIONS)
            .chain(crate::pages::gc::CLEAN_UP_TABS.iter().map(|(_, _, l)| *l))
            .chain([
                "healthy",
                "unhealthy",
                "unknown",
                "InProgress",
                "Succeed",
                "Failed",
                "Stopped",
                "copy",
                "deletion",
            ]);
        for key in tables {
            if zh_cn(key).is_none() {
                missing.push(key.to_string());
            }
        }
        assert!(used > 50, "the scan found only {used} texts: is it still reading the right files?");
        assert!(missing.is_empty(), "texts without a Chinese translation: {missing:#?}");
        let mut keys: Vec<_> = ZH_CN
            .iter()
            .chain(identity::ZH_CN)
            .chain(policy::ZH_CN)
            .chain(ops::ZH_CN)
            .map(|(en, _)| *en)
            .collect();
        keys.sort_unstable();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n, "a key is listed twice");
    }

    #[test]
    fn fill_and_tags() {
        assert_eq!(fill("Page {} of {}", &[&2, &7]), "Page 2 of 7");
        assert_eq!(fill(translate(Lang::ZhCn, "Page {} of {}"), &[&2, &7]), "第 2 页，共 7 页");
        assert_eq!(Lang::from_cookie_header("sid=x; berth-lang=zh-CN"), Lang::ZhCn);
        assert_eq!(Lang::from_cookie_header("berth-lang=xx"), Lang::En);
        assert_eq!(Lang::from_tag("en-us"), Some(Lang::En));
        assert_eq!(translate(Lang::En, "Projects"), "Projects");
        assert_eq!(translate(Lang::ZhCn, "Projects"), "项目");
    }
}
