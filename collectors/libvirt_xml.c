/*
 * libvirt_xml.c: the domain XML parser of the libvirt collector
 * (libvirt_xml.h), with libxml2's XPath.
 */
#include "libvirt_xml.h"
#include "err.h"
#include "hash.h"
#include "str.h"

#include <errno.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <stdio.h>
#include <string.h>

static void xstr(xmlXPathContextPtr ctx, const char *expr, char *out, size_t len)
{
	xmlXPathObjectPtr o = xmlXPathEvalExpression((const xmlChar *)expr, ctx);
	out[0] = '\0';
	if (o && o->type == XPATH_STRING && o->stringval)
		str_copy(out, (const char *)o->stringval, len);
	else if (o && o->nodesetval && o->nodesetval->nodeNr > 0) {
		xmlChar *v = xmlNodeGetContent(o->nodesetval->nodeTab[0]);
		if (v)
			str_copy(out, (const char *)v, len);
		xmlFree(v);
	}
	xmlXPathFreeObject(o);
}

static uint32_t fnv32(const char *s)
{
	return hash_fnv32_str(HASH_FNV32_INIT, s);
}

static void disk_label(struct lv_disk *d)
{
	if (d->serial[0])
		snprintf(d->label, sizeof(d->label), "%.24s:%.20s", d->target, d->serial);
	else if (d->source[0])
		snprintf(d->label, sizeof(d->label), "%.24s:%08x", d->target, fnv32(d->source));
	else
		str_copy(d->label, d->target, sizeof(d->label));
}

static void silent(void *ctx, const char *msg, ...)
{
	(void)ctx;
	(void)msg;
}

int lv_parse_domain_xml(const char *xml, size_t len, struct lv_domain_info *info, struct tally_err *e)
{
	xmlDocPtr doc;
	xmlXPathContextPtr ctx = NULL;
	xmlXPathObjectPtr set = NULL;
	char expr[320];
	int rc = 0;

	memset(info, 0, sizeof(*info));
	xmlSetGenericErrorFunc(NULL, silent);
	if (len > INT32_MAX)
		return err_set(e, -EINVAL, "domain xml too large");
	doc = xmlReadMemory(xml, (int)len, "domain.xml", NULL, XML_PARSE_NONET | XML_PARSE_NOERROR |
			    XML_PARSE_NOWARNING);
	if (!doc)
		return err_set(e, -EINVAL, "domain xml is not well-formed");
	xmlNodePtr root = xmlDocGetRootElement(doc);
	if (!root || xmlStrcmp(root->name, (const xmlChar *)"domain")) {
		rc = err_set(e, -EINVAL, "xml is not a <domain> description");
		goto out;
	}
	if (!(ctx = xmlXPathNewContext(doc))) {
		rc = -ENOMEM;
		goto out;
	}
	/* Nova wrote namespace 1.0 until Zed (2022) and 1.1 since (it added
	 * nova:ports); the fields we read are the same in both */
	xmlXPathRegisterNs(ctx, (const xmlChar *)"nova",
			   (const xmlChar *)"http://openstack.org/xmlns/libvirt/nova/1.0");
	xmlXPathRegisterNs(ctx, (const xmlChar *)"nova11",
			   (const xmlChar *)"http://openstack.org/xmlns/libvirt/nova/1.1");
	xstr(ctx, "string(/domain/uuid)", info->uuid, sizeof(info->uuid));
	xstr(ctx, "string(/domain/name)", info->name, sizeof(info->name));
	if (!info->uuid[0]) {
		rc = err_set(e, -EINVAL, "domain '%s' has no <uuid>", info->name);
		goto out;
	}

	set = xmlXPathEvalExpression((const xmlChar *)"/domain/devices/disk[@device='disk' or not(@device)]", ctx);
	int n = set && set->nodesetval ? set->nodesetval->nodeNr : 0;
	for (int i = 0; i < n; i++) {
		struct lv_disk d;
		memset(&d, 0, sizeof(d));
		snprintf(expr, sizeof(expr), "string((/domain/devices/disk[@device='disk' or not(@device)])[%d]/target/@dev)", i + 1);
		xstr(ctx, expr, d.target, sizeof(d.target));
		snprintf(expr, sizeof(expr), "string((/domain/devices/disk[@device='disk' or not(@device)])[%d]/serial)", i + 1);
		xstr(ctx, expr, d.serial, sizeof(d.serial));
		snprintf(expr, sizeof(expr), "string((/domain/devices/disk[@device='disk' or not(@device)])[%d]/source/@*[name()='file' or name()='dev' or name()='name' or name()='volume'])", i + 1);
		xstr(ctx, expr, d.source, sizeof(d.source));
		if (!d.target[0] || info->n_disks == LV_MAX_DEVS) {
			info->skipped_devs++;
			continue;
		}
		disk_label(&d);
		info->disks[info->n_disks++] = d;
	}
	xmlXPathFreeObject(set);
	set = xmlXPathEvalExpression((const xmlChar *)"/domain/devices/interface", ctx);
	n = set && set->nodesetval ? set->nodesetval->nodeNr : 0;
	for (int i = 0; i < n; i++) {
		struct lv_nic c;
		memset(&c, 0, sizeof(c));
		snprintf(expr, sizeof(expr), "string((/domain/devices/interface)[%d]/mac/@address)", i + 1);
		xstr(ctx, expr, c.mac, sizeof(c.mac));
		snprintf(expr, sizeof(expr), "string((/domain/devices/interface)[%d]/target/@dev)", i + 1);
		xstr(ctx, expr, c.target, sizeof(c.target));
		snprintf(expr, sizeof(expr), "string((/domain/devices/interface)[%d]/@type)", i + 1);
		xstr(ctx, expr, c.type, sizeof(c.type));
		if (!c.mac[0] || info->n_nics == LV_MAX_DEVS) {
			info->skipped_devs++;
			continue;
		}
		info->nics[info->n_nics++] = c;
	}
	char probe[8];
	const char *ns = "nova";
	xstr(ctx, "string(count(/domain/metadata/nova:instance))", probe, sizeof(probe));
	if (!probe[0] || !strcmp(probe, "0")) {
		ns = "nova11";
		xstr(ctx, "string(count(/domain/metadata/nova11:instance))", probe, sizeof(probe));
	}
	info->has_nova = probe[0] && strcmp(probe, "0") != 0;
	if (info->has_nova) {
		snprintf(expr, sizeof(expr), "string(/domain/metadata/%s:instance/%s:name)", ns, ns);
		xstr(ctx, expr, info->nova_name, sizeof(info->nova_name));
		snprintf(expr, sizeof(expr), "string(/domain/metadata/%s:instance/%s:owner/%s:project/@uuid)", ns, ns, ns);
		xstr(ctx, expr, info->project, sizeof(info->project));
		snprintf(expr, sizeof(expr), "string(/domain/metadata/%s:instance/%s:owner/%s:user/@uuid)", ns, ns, ns);
		xstr(ctx, expr, info->user, sizeof(info->user));
		snprintf(expr, sizeof(expr), "string(/domain/metadata/%s:instance/%s:flavor/@name)", ns, ns);
		xstr(ctx, expr, info->flavor, sizeof(info->flavor));
	}
out:
	xmlXPathFreeObject(set);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return rc;
}

